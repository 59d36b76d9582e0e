// Verilator main of the vector testbenches: toggles the top's clock until $finish and exits
// with status 1 when the bench stopped on $fatal or $stop, or never finished.
#include <memory>

#include "Vgolden_tb.h"
#include "verilated.h"

int main(int argc, char** argv) {
  const std::unique_ptr<VerilatedContext> context{new VerilatedContext};
  context->commandArgs(argc, argv);
  context->fatalOnError(false);
  const std::unique_ptr<Vgolden_tb> top{new Vgolden_tb{context.get()}};
  top->clk_i = 0;
  top->eval();
  while (!context->gotFinish()) {
    top->clk_i = !top->clk_i;
    top->eval();
    context->timeInc(5);
  }
  top->final();
  return context->gotError() ? 1 : 0;
}

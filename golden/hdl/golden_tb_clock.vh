// Port list and clock of a vector testbench. Under Verilator (GOLDEN_EXTERNAL_CLOCK) the C++
// main (golden_tb_main.cpp) toggles clk_i, so the bench needs no --timing; elsewhere the
// bench makes its own 10-unit clock.
`ifdef GOLDEN_EXTERNAL_CLOCK
(
  input wire clk_i
);
`else
;
  reg clk_i = 1'b0;
  always #5 clk_i = ~clk_i;
`endif

// Input-unit code report of a vector testbench: included in a bench module that declares
// N, DAC_BITS and CODE_BITS.
task report_codes;  // print every DAC code that differs from its expected value
  input [CODE_BITS-1:0] got, want;
  integer k;
  begin
    for (k = 0; k < N; k = k + 1) begin
      if (got[k*DAC_BITS +: DAC_BITS] !== want[k*DAC_BITS +: DAC_BITS]) begin
        $display("  code %0d: got %h expected %h", k, got[k*DAC_BITS +: DAC_BITS],
                 want[k*DAC_BITS +: DAC_BITS]);
      end
    end
  end
endtask

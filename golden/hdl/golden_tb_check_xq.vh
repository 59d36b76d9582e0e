// Check of one output beat of abfp_input_unit: included in a vector bench after its passed,
// failed, MAX_REPORTS, CODE_BITS, SW_W (scale width) and XQ_W (= CODE_BITS + SW_W + 1) are
// declared, and after golden_tb_report_codes.vh. The expected line is {nonfinite, sx, codes}:
// sx and every code must match bit for bit, and the sticky nonfinite_o must lie between the
// flag expected after this vector and the one expected after the next (flag_next), whose
// beats can be taken before this output leaves. count is the number of vectors sent.
task check_xq;
  input integer        index;
  input integer        count;
  input [CODE_BITS-1:0] got_codes;
  input [SW_W-1:0]     got_scale;
  input                got_flag;
  input [XQ_W-1:0]     want;
  input                flag_next;
  begin
    if (index >= count) begin
      failed = failed + 1;
      $display("FAIL vector %0d: unexpected extra output of the input unit", index);
    end else if (got_codes === want[0 +: CODE_BITS] && got_scale === want[CODE_BITS +: SW_W]
                 && (got_flag === 1'b1 || got_flag === 1'b0) && got_flag >= want[XQ_W-1]
                 && got_flag <= flag_next) begin
      passed = passed + 1;
    end else begin
      failed = failed + 1;
      if (failed <= MAX_REPORTS) begin
        $display("FAIL vector %0d: sx got %h expected %h, nonfinite_o %b expected %b..%b",
                 index, got_scale, want[CODE_BITS +: SW_W], got_flag, want[XQ_W-1], flag_next);
        report_codes(got_codes, want[0 +: CODE_BITS]);
      end
    end
  end
endtask

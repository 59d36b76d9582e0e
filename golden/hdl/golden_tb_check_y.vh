// Output-unit result check of a vector testbench: included in a bench module that declares
// LANES, OUT_W, Y_BITS, MAX_REPORTS and the counters outputs, passed and failed.
task check_y;  // compare output `index`, received as `got`, with `want`, and report lanes
  input integer index;
  input [Y_BITS-1:0] got, want;
  input integer closing;  // stimulus beat that closed this output, or -1 when not tracked
  integer lane;
  begin
    if (index >= outputs) begin
      failed = failed + 1;
      $display("FAIL output %0d: unexpected extra output %h", index, got);
    end else if (got === want) begin
      passed = passed + 1;
    end else begin
      failed = failed + 1;
      if (failed <= MAX_REPORTS) begin
        if (closing >= 0) begin
          $display("FAIL output %0d (closing beat %0d): y got %h expected %h", index, closing,
                   got, want);
        end else begin
          $display("FAIL output %0d: y got %h expected %h", index, got, want);
        end
        for (lane = 0; lane < LANES; lane = lane + 1) begin
          if (got[lane*OUT_W +: OUT_W] !== want[lane*OUT_W +: OUT_W]) begin
            $display("  lane %0d: got %h expected %h", lane, got[lane*OUT_W +: OUT_W],
                     want[lane*OUT_W +: OUT_W]);
          end
        end
      end
    end
  end
endtask

// End of a vector bench: included after its passed and failed counters are declared. Prints
// "N passed, M failed" (the line golden/simulate.py reads) and ends with $fatal on any
// failure, naming the bench.
task finish;
  begin
    $display("%0d passed, %0d failed", passed, failed);
    if (failed != 0) $fatal(1, "%m: %0d of %0d failed", failed, passed + failed);
    $finish;
  end
endtask

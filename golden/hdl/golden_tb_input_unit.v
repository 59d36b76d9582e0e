// Vector testbench of abfp_input_unit (golden/hdl, docs/golden.md).
//
// Reads a vector set's input_stimulus.hex (one n-element vector per line, element k at
// [k*IN_W +: IN_W]) and input_expected.hex (one line per vector: {nonfinite, sx, codes}),
// sends each vector as N/P beats with optional seeded random stalls on in_valid_i and
// out_ready_i, and compares every output beat: sx and all N codes bit for bit, and the sticky
// nonfinite_o against the expected flag (set once a vector up to this one held an inf or NaN;
// it may already be set by the next vector, whose beats can be taken before this output
// leaves). Prints "N passed, M failed" and ends with $fatal on any failure.
//
// Plusargs: +STIMULUS=<file> +EXPECTED=<file> +TRANSACTIONS=<vectors>
//           +STALL_SEED=<int> +STALL_PCT=<0..100> (default 0: no stalls).
// Parameters: the unit's (from the manifest's hdl_parameters.input) and MAX_TRANSACTIONS
// (memory depth, at least the count).
module golden_tb_input_unit #(
  parameter integer N                = 128,    // unit parameter
  parameter integer P                = 16,     // unit parameter
  parameter integer DAC_BITS         = 8,      // unit parameter
  parameter integer IN_EXP           = 8,      // unit parameter
  parameter integer IN_MAN           = 7,      // unit parameter
  parameter integer SCALE_EXP        = 8,      // unit parameter
  parameter integer SCALE_MAN        = 7,      // unit parameter
  parameter integer MAX_TRANSACTIONS = 65536   // depth of the vector memories
)
`include "golden_tb_clock.vh"

  localparam integer IN_W      = 1 + IN_EXP + IN_MAN;
  localparam integer SW_W      = 1 + SCALE_EXP + SCALE_MAN;
  localparam integer BEATS     = N / P;
  localparam integer BEAT_BITS = P * IN_W;
  localparam integer CODE_BITS = N * DAC_BITS;
  localparam integer XQ_W      = CODE_BITS + SW_W + 1;
  localparam integer TIMEOUT   = 10000;  // clocks without progress before the bench gives up
  localparam integer MAX_REPORTS = 20;   // failures printed in full

  reg [N*IN_W-1:0] x_mem    [0:MAX_TRANSACTIONS-1];
  reg [XQ_W-1:0]  expected [0:MAX_TRANSACTIONS-1];

  reg  [1023:0] stimulus_file, expected_file;
  integer       transactions, stall_seed, stall_pct;

  reg                  rst_n;
  reg                  x_valid, out_ready;
  reg  [BEAT_BITS-1:0] x_data;
  wire                 x_ready, out_valid, nonfinite;
  wire [SW_W-1:0]      scale;
  wire [CODE_BITS-1:0] codes;

  abfp_input_unit #(
    .N(N), .P(P), .DAC_BITS(DAC_BITS), .IN_EXP(IN_EXP), .IN_MAN(IN_MAN),
    .SCALE_EXP(SCALE_EXP), .SCALE_MAN(SCALE_MAN)
  ) u_dut (
    .clk_i      (clk_i),
    .rst_ni     (rst_n),
    .in_valid_i (x_valid),
    .in_ready_o (x_ready),
    .in_data_i  (x_data),
    .out_valid_o(out_valid),
    .out_ready_i(out_ready),
    .out_scale_o(scale),
    .out_codes_o(codes),
    .nonfinite_o(nonfinite)
  );

  integer vec, part, received, passed, failed, cycle, idle;
  reg     flag_next;
  reg [XQ_W-1:0] want;

`include "golden_tb_pacing.vh"
`include "golden_tb_report_codes.vh"
`include "golden_tb_check_xq.vh"
`include "golden_tb_x_beats.vh"
`include "golden_tb_finish.vh"

  initial begin
    if (!$value$plusargs("STIMULUS=%s", stimulus_file)) $fatal(1, "missing +STIMULUS=<file>");
    if (!$value$plusargs("EXPECTED=%s", expected_file)) $fatal(1, "missing +EXPECTED=<file>");
    if (!$value$plusargs("TRANSACTIONS=%d", transactions)) $fatal(1, "missing +TRANSACTIONS=<n>");
    if (!$value$plusargs("STALL_SEED=%d", stall_seed)) stall_seed = 1;
    if (!$value$plusargs("STALL_PCT=%d", stall_pct)) stall_pct = 0;
    if (transactions < 1 || transactions > MAX_TRANSACTIONS) begin
      $fatal(1, "+TRANSACTIONS=%0d is outside 1..MAX_TRANSACTIONS=%0d", transactions,
             MAX_TRANSACTIONS);
    end
    $readmemh(stimulus_file, x_mem, 0, transactions - 1);
    $readmemh(expected_file, expected, 0, transactions - 1);
    vec = 0;
    part = 0;
    received = 0;
    passed = 0;
    failed = 0;
    cycle = 0;
    idle = 0;
    rst_n = 1'b0;
    x_valid = 1'b0;
    out_ready = 1'b0;
    x_data = {BEAT_BITS{1'b0}};
  end

  // The sticky flag's final value, once every vector has left.
  task check_final_nonfinite;
    begin
      if (failed == 0 && nonfinite !== expected[transactions-1][XQ_W-1]) begin
        failed = failed + 1;
        $display("FAIL vector %0d: nonfinite_o ends at %b, expected %b", transactions - 1,
                 nonfinite, expected[transactions-1][XQ_W-1]);
      end
    end
  endtask

  // One process per clock edge: samples the units' outputs as they were before the edge and
  // drives the next inputs with non-blocking assignments, like a flop; its own counters are
  // blocking variables read only here.
  always @(posedge clk_i) begin
    cycle = cycle + 1;
    idle = idle + 1;
    if (cycle == 3) rst_n <= 1'b1;
    if (rst_n) begin
      if (out_valid && out_ready) begin
        idle = 0;
        want = expected[received];
        flag_next = (received + 1 < transactions) ? expected[received+1][XQ_W-1] : want[XQ_W-1];
        check_xq(received, transactions, codes, scale, nonfinite, want, flag_next);
        received = received + 1;
      end
      send_x_beats(transactions);
      out_ready <= !stall(0);
      if (received == transactions && vec == transactions) begin
        check_final_nonfinite;
        finish;
      end
      if (idle > TIMEOUT) begin
        $display("FAIL timeout: %0d of %0d vectors sent, %0d received", vec, transactions,
                 received);
        failed = failed + (transactions - received);
        finish;
      end
    end
  end
endmodule

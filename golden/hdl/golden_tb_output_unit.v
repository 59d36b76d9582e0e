// Vector testbench of abfp_output_unit (golden/hdl, docs/golden.md).
//
// Reads a vector set's output_stimulus.hex (one input beat per line: {last, first, sx, sw, qy})
// and output_expected.hex (one output beat per line: y of every lane), drives every beat with
// optional seeded random stalls on in_valid_i and out_ready_i, compares every output beat bit
// for bit, prints "N passed, M failed" and ends with $fatal on any failure.
//
// Plusargs: +STIMULUS=<file> +EXPECTED=<file> +TRANSACTIONS=<beats> +OUTPUTS=<outputs>
//           +STALL_SEED=<int> +STALL_PCT=<0..100> (default 0: no stalls).
// Parameters: the unit's (from the manifest's hdl_parameters.output), K_BITS (the manifest's
// constants.rescale_constant_bits), MAX_TRANSACTIONS and MAX_OUTPUTS (memory depths, at least
// the counts).
module golden_tb_output_unit #(
  parameter integer LANES            = 4,        // unit parameter
  parameter integer ADC_BITS         = 8,        // unit parameter
  parameter integer SCALE_EXP        = 8,        // unit parameter
  parameter integer SCALE_MAN        = 7,        // unit parameter
  parameter integer PART_EXP         = 8,        // unit parameter
  parameter integer PART_MAN         = 7,        // unit parameter
  parameter integer ACC_EXP          = 8,        // unit parameter
  parameter integer ACC_MAN          = 23,       // unit parameter
  parameter integer OUT_EXP          = 8,        // unit parameter
  parameter integer OUT_MAN          = 7,        // unit parameter
  parameter [31:0]  K_BITS           = 32'h3f810204,  // fp32 bits of K for k_i
  parameter integer MAX_TRANSACTIONS = 65536,    // depth of the stimulus memory
  parameter integer MAX_OUTPUTS      = 65536     // depth of the expected memory
)
`include "golden_tb_clock.vh"

  localparam integer SW_W    = 1 + SCALE_EXP + SCALE_MAN;
  localparam integer OUT_W   = 1 + OUT_EXP + OUT_MAN;
  localparam integer QY_BITS = LANES * ADC_BITS;
  localparam integer SW_BITS = LANES * SW_W;
  localparam integer STIM_W  = QY_BITS + SW_BITS + SW_W + 2;
  localparam integer Y_BITS  = LANES * OUT_W;
  localparam integer TIMEOUT = 10000;  // clocks without progress before the bench gives up
  localparam integer MAX_REPORTS = 20; // failures printed in full

  reg [STIM_W-1:0] stimulus [0:MAX_TRANSACTIONS-1];
  reg [Y_BITS-1:0] expected [0:MAX_OUTPUTS-1];
  integer          closing_beat [0:MAX_OUTPUTS-1];  // beat that completes each output

  reg  [1023:0] stimulus_file, expected_file;
  integer       transactions, outputs, stall_seed, stall_pct;

  reg               rst_n;
  reg               in_valid, out_ready;
  reg  [STIM_W-1:0] beat;
  wire              in_ready, out_valid;
  wire [Y_BITS-1:0] y;

  abfp_output_unit #(
    .LANES(LANES), .ADC_BITS(ADC_BITS), .SCALE_EXP(SCALE_EXP), .SCALE_MAN(SCALE_MAN),
    .PART_EXP(PART_EXP), .PART_MAN(PART_MAN), .ACC_EXP(ACC_EXP), .ACC_MAN(ACC_MAN),
    .OUT_EXP(OUT_EXP), .OUT_MAN(OUT_MAN)
  ) u_dut (
    .clk_i      (clk_i),
    .rst_ni     (rst_n),
    .k_i        (K_BITS),
    .in_valid_i (in_valid),
    .in_ready_o (in_ready),
    .qy_i       (beat[0 +: QY_BITS]),
    .sw_i       (beat[QY_BITS +: SW_BITS]),
    .sx_i       (beat[QY_BITS + SW_BITS +: SW_W]),
    .first_i    (beat[STIM_W-2]),
    .last_i     (beat[STIM_W-1]),
    .out_valid_o(out_valid),
    .out_ready_i(out_ready),
    .y_o        (y)
  );

  integer sent, received, passed, failed, cycle, idle, closing;

`include "golden_tb_pacing.vh"
`include "golden_tb_check_y.vh"
`include "golden_tb_finish.vh"

  initial begin
    if (!$value$plusargs("STIMULUS=%s", stimulus_file)) $fatal(1, "missing +STIMULUS=<file>");
    if (!$value$plusargs("EXPECTED=%s", expected_file)) $fatal(1, "missing +EXPECTED=<file>");
    if (!$value$plusargs("TRANSACTIONS=%d", transactions)) $fatal(1, "missing +TRANSACTIONS=<n>");
    if (!$value$plusargs("OUTPUTS=%d", outputs)) $fatal(1, "missing +OUTPUTS=<n>");
    if (!$value$plusargs("STALL_SEED=%d", stall_seed)) stall_seed = 1;
    if (!$value$plusargs("STALL_PCT=%d", stall_pct)) stall_pct = 0;
    if (transactions < 1 || transactions > MAX_TRANSACTIONS || outputs < 1 ||
        outputs > MAX_OUTPUTS) begin
      $fatal(1, "counts %0d/%0d exceed MAX_TRANSACTIONS/MAX_OUTPUTS %0d/%0d", transactions,
             outputs, MAX_TRANSACTIONS, MAX_OUTPUTS);
    end
    $readmemh(stimulus_file, stimulus, 0, transactions - 1);
    $readmemh(expected_file, expected, 0, outputs - 1);
    closing = 0;
    for (sent = 0; sent < transactions; sent = sent + 1) begin
      if (stimulus[sent][STIM_W-1] && closing < outputs) begin
        closing_beat[closing] = sent;
        closing = closing + 1;
      end
    end
    if (closing != outputs) begin
      $fatal(1, "the stimulus has %0d last beats but +OUTPUTS=%0d", closing, outputs);
    end
    sent = 0;
    received = 0;
    passed = 0;
    failed = 0;
    cycle = 0;
    idle = 0;
    rst_n = 1'b0;
    in_valid = 1'b0;
    out_ready = 1'b0;
    beat = {STIM_W{1'b0}};
  end

  // One process per clock edge: samples the units' outputs as they were before the edge and
  // drives the next inputs with non-blocking assignments, like a flop; its own counters are
  // blocking variables read only here.
  always @(posedge clk_i) begin
    cycle = cycle + 1;
    idle = idle + 1;
    if (cycle == 3) rst_n <= 1'b1;
    if (rst_n) begin
      // Output side: compare the beat taken at this edge.
      if (out_valid && out_ready) begin
        idle = 0;
        check_y(received, y, expected[received], closing_beat[received]);
        received = received + 1;
      end
      // Input side: a beat moves when valid and ready are both high at this edge.
      if (in_valid && in_ready) begin
        idle = 0;
        sent = sent + 1;
        in_valid <= 1'b0;
      end
      // Next beat: once presented, valid stays high until taken.
      if ((!in_valid || in_ready) && sent < transactions && !stall(0)) begin
        in_valid <= 1'b1;
        beat     <= stimulus[sent];
      end
      out_ready <= !stall(0);
      if (received == outputs && sent == transactions) finish;
      if (idle > TIMEOUT) begin
        $display("FAIL timeout: %0d of %0d beats sent, %0d of %0d outputs received", sent,
                 transactions, received, outputs);
        failed = failed + (outputs - received);
        finish;
      end
    end
  end
endmodule

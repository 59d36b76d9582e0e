// End-to-end vector testbench of an ABFP tile's digital units (golden/hdl, docs/golden.md):
// x -> abfp_input_unit -> (analog array) -> abfp_output_unit -> y.
//
// The input unit gets the tile's x vectors (tile_x.hex, one n-element vector per line) and
// its every output (sx, codes and nonfinite_o, checked as golden_tb_input_unit checks them)
// is compared with tile_x_expected.hex. The analog array is the
// golden model's: its ADC codes come from tile_beats.hex (one output-unit beat per line,
// {x_index, last, first, sx, sw, qy}); each beat is sent only once the input unit has produced
// vector x_index, and carries the sx that the input unit produced for it (not the file's).
// Every output of the output unit is compared with tile_expected.hex. Prints
// "N passed, M failed" (vectors and outputs together) and ends with $fatal on any failure.
//
// Plusargs: +X=<file> +X_EXPECTED=<file> +STIMULUS=<file> +EXPECTED=<file>
//           +VECTORS=<n> +TRANSACTIONS=<beats> +OUTPUTS=<n>
//           +STALL_SEED=<int> +STALL_PCT=<0..100> (default 0: no stalls).
module golden_tb_tile #(
  parameter integer N                = 128,      // input unit parameter
  parameter integer P                = 16,       // input unit parameter
  parameter integer DAC_BITS         = 8,        // input unit parameter
  parameter integer IN_EXP           = 8,        // input unit parameter
  parameter integer IN_MAN           = 7,        // input unit parameter
  parameter integer SCALE_EXP        = 8,        // both units' scale format
  parameter integer SCALE_MAN        = 7,        // both units' scale format
  parameter integer LANES            = 4,        // output unit parameter
  parameter integer ADC_BITS         = 8,        // output unit parameter
  parameter integer PART_EXP         = 8,        // output unit parameter
  parameter integer PART_MAN         = 7,        // output unit parameter
  parameter integer ACC_EXP          = 8,        // output unit parameter
  parameter integer ACC_MAN          = 23,       // output unit parameter
  parameter integer OUT_EXP          = 8,        // output unit parameter
  parameter integer OUT_MAN          = 7,        // output unit parameter
  parameter [31:0]  K_BITS           = 32'h3f810204,  // fp32 bits of K for k_i
  parameter integer MAX_VECTORS      = 65536,    // depth of the x memories
  parameter integer MAX_TRANSACTIONS = 65536,    // depth of the beat memory
  parameter integer MAX_OUTPUTS      = 65536     // depth of the y memory
)
`include "golden_tb_clock.vh"

  localparam integer IN_W      = 1 + IN_EXP + IN_MAN;
  localparam integer SW_W      = 1 + SCALE_EXP + SCALE_MAN;
  localparam integer OUT_W     = 1 + OUT_EXP + OUT_MAN;
  localparam integer BEATS     = N / P;
  localparam integer BEAT_BITS = P * IN_W;
  localparam integer CODE_BITS = N * DAC_BITS;
  localparam integer XQ_W      = CODE_BITS + SW_W + 1;
  localparam integer QY_BITS   = LANES * ADC_BITS;
  localparam integer SW_BITS   = LANES * SW_W;
  localparam integer SX_LSB    = QY_BITS + SW_BITS;
  localparam integer BEAT_W    = SX_LSB + SW_W + 2 + 32;
  localparam integer Y_BITS    = LANES * OUT_W;
  localparam integer TIMEOUT   = 10000;  // clocks without progress before the bench gives up
  localparam integer MAX_REPORTS = 20;   // failures printed in full

  reg [N*IN_W-1:0]  x_mem [0:MAX_VECTORS-1];
  reg [XQ_W-1:0]    xq_mem [0:MAX_VECTORS-1];
  reg [SW_W-1:0]    sx_seen [0:MAX_VECTORS-1];  // sx as the input unit produced it
  reg [BEAT_W-1:0]  beat_mem [0:MAX_TRANSACTIONS-1];
  reg [Y_BITS-1:0]  y_mem [0:MAX_OUTPUTS-1];

  reg  [1023:0] x_file, xq_file, beat_file, y_file;
  integer       vectors, transactions, outputs, stall_seed, stall_pct;

  reg                  rst_n;
  // input unit
  reg                  x_valid, xq_ready;
  reg  [BEAT_BITS-1:0] x_data;
  wire                 x_ready, xq_valid, nonfinite;
  wire [SW_W-1:0]      xq_scale;
  wire [CODE_BITS-1:0] xq_codes;
  // output unit
  reg                  b_valid, y_ready;
  reg  [BEAT_W-1:0]    b_data;
  reg  [SW_W-1:0]      b_sx;
  wire                 b_ready, y_valid;
  wire [Y_BITS-1:0]    y;

  abfp_input_unit #(
    .N(N), .P(P), .DAC_BITS(DAC_BITS), .IN_EXP(IN_EXP), .IN_MAN(IN_MAN),
    .SCALE_EXP(SCALE_EXP), .SCALE_MAN(SCALE_MAN)
  ) u_input (
    .clk_i      (clk_i),
    .rst_ni     (rst_n),
    .in_valid_i (x_valid),
    .in_ready_o (x_ready),
    .in_data_i  (x_data),
    .out_valid_o(xq_valid),
    .out_ready_i(xq_ready),
    .out_scale_o(xq_scale),
    .out_codes_o(xq_codes),
    .nonfinite_o(nonfinite)
  );

  abfp_output_unit #(
    .LANES(LANES), .ADC_BITS(ADC_BITS), .SCALE_EXP(SCALE_EXP), .SCALE_MAN(SCALE_MAN),
    .PART_EXP(PART_EXP), .PART_MAN(PART_MAN), .ACC_EXP(ACC_EXP), .ACC_MAN(ACC_MAN),
    .OUT_EXP(OUT_EXP), .OUT_MAN(OUT_MAN)
  ) u_output (
    .clk_i      (clk_i),
    .rst_ni     (rst_n),
    .k_i        (K_BITS),
    .in_valid_i (b_valid),
    .in_ready_o (b_ready),
    .qy_i       (b_data[0 +: QY_BITS]),
    .sw_i       (b_data[QY_BITS +: SW_BITS]),
    .sx_i       (b_sx),
    .first_i    (b_data[SX_LSB + SW_W]),
    .last_i     (b_data[SX_LSB + SW_W + 1]),
    .out_valid_o(y_valid),
    .out_ready_i(y_ready),
    .y_o        (y)
  );

  integer vec, part, produced, sent, received, passed, failed, cycle, idle;
  reg [XQ_W-1:0] want;
  reg            flag_next;
  reg [31:0]     need;

`include "golden_tb_pacing.vh"
`include "golden_tb_check_y.vh"
`include "golden_tb_report_codes.vh"
`include "golden_tb_check_xq.vh"
`include "golden_tb_x_beats.vh"
`include "golden_tb_finish.vh"

  initial begin
    if (!$value$plusargs("X=%s", x_file)) $fatal(1, "missing +X=<file>");
    if (!$value$plusargs("X_EXPECTED=%s", xq_file)) $fatal(1, "missing +X_EXPECTED=<file>");
    if (!$value$plusargs("STIMULUS=%s", beat_file)) $fatal(1, "missing +STIMULUS=<file>");
    if (!$value$plusargs("EXPECTED=%s", y_file)) $fatal(1, "missing +EXPECTED=<file>");
    if (!$value$plusargs("VECTORS=%d", vectors)) $fatal(1, "missing +VECTORS=<n>");
    if (!$value$plusargs("TRANSACTIONS=%d", transactions)) $fatal(1, "missing +TRANSACTIONS=<n>");
    if (!$value$plusargs("OUTPUTS=%d", outputs)) $fatal(1, "missing +OUTPUTS=<n>");
    if (!$value$plusargs("STALL_SEED=%d", stall_seed)) stall_seed = 1;
    if (!$value$plusargs("STALL_PCT=%d", stall_pct)) stall_pct = 0;
    if (vectors < 1 || vectors > MAX_VECTORS || transactions < 1 ||
        transactions > MAX_TRANSACTIONS || outputs < 1 || outputs > MAX_OUTPUTS) begin
      $fatal(1, "counts %0d/%0d/%0d exceed MAX_VECTORS/MAX_TRANSACTIONS/MAX_OUTPUTS", vectors,
             transactions, outputs);
    end
    $readmemh(x_file, x_mem, 0, vectors - 1);
    $readmemh(xq_file, xq_mem, 0, vectors - 1);
    $readmemh(beat_file, beat_mem, 0, transactions - 1);
    $readmemh(y_file, y_mem, 0, outputs - 1);
    vec = 0;
    part = 0;
    produced = 0;
    sent = 0;
    received = 0;
    passed = 0;
    failed = 0;
    cycle = 0;
    idle = 0;
    rst_n = 1'b0;
    x_valid = 1'b0;
    xq_ready = 1'b0;
    x_data = {BEAT_BITS{1'b0}};
    b_valid = 1'b0;
    y_ready = 1'b0;
    b_data = {BEAT_W{1'b0}};
    b_sx = {SW_W{1'b0}};
  end

  // One process per clock edge: samples the units' outputs as they were before the edge and
  // drives the next inputs with non-blocking assignments, like a flop; its own counters are
  // blocking variables read only here.
  always @(posedge clk_i) begin
    cycle = cycle + 1;
    idle = idle + 1;
    if (cycle == 3) rst_n <= 1'b1;
    if (rst_n) begin
      // Input unit's output: compare, keep sx for the output unit's beats.
      if (xq_valid && xq_ready) begin
        idle = 0;
        want = xq_mem[produced];
        flag_next = (produced + 1 < vectors) ? xq_mem[produced+1][XQ_W-1] : want[XQ_W-1];
        check_xq(produced, vectors, xq_codes, xq_scale, nonfinite, want, flag_next);
        sx_seen[produced] = xq_scale;
        produced = produced + 1;
      end
      // Output unit's output.
      if (y_valid && y_ready) begin
        idle = 0;
        check_y(received, y, y_mem[received], -1);
        received = received + 1;
      end
      // x beats into the input unit.
      send_x_beats(vectors);
      // ADC-code beats into the output unit, each once its input vector's sx is known.
      if (b_valid && b_ready) begin
        idle = 0;
        sent = sent + 1;
        b_valid <= 1'b0;
      end
      if ((!b_valid || b_ready) && sent < transactions) begin
        need = beat_mem[sent][BEAT_W-1 -: 32];
        if (need < produced && !stall(0)) begin
          b_valid <= 1'b1;
          b_data  <= beat_mem[sent];
          b_sx    <= sx_seen[need];
        end
      end
      xq_ready <= !stall(0);
      y_ready  <= !stall(0);
      if (produced == vectors && received == outputs && sent == transactions) finish;
      if (idle > TIMEOUT) begin
        $display("FAIL timeout: %0d of %0d vectors, %0d of %0d beats, %0d of %0d outputs",
                 produced, vectors, sent, transactions, received, outputs);
        failed = failed + (vectors - produced) + (outputs - received);
        finish;
      end
    end
  end
endmodule

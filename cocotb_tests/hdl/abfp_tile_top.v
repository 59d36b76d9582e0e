// Cosimulation top of the end-to-end tile: the RTL input unit and the RTL output unit, each
// between a stimulus memory that drives its input beats and a capture memory that records every
// output beat with its cycle. The bench loads the memories from hex files (the output unit's
// ADC codes come from the golden analog array, docs/arithmetic.md steps 4-7), starts a run,
// waits for done_o and dumps the captures. The clock is generated here, not by cocotb, so no
// Python runs per clock (Verilator builds it with --timing; Icarus runs delays natively); the
// bench awaits its edges only to reset, strobe the memory files and start a run.
// Every valid and ready stalls at random: a cycle idles when the low 16 bits of its own LFSR
// (seeded from seed_i at start) fall below stall_i. Idle input cycles carry noise data.
// Test-only: not part of the synthesized design.
module abfp_tile_top #(
  parameter integer N         = 128,  // tile width n
  parameter integer P         = 16,   // input elements per beat
  parameter integer DAC_BITS  = 8,    // bx
  parameter integer IN_EXP    = 8,    // input format
  parameter integer IN_MAN    = 7,
  parameter integer SCALE_EXP = 8,    // scale format
  parameter integer SCALE_MAN = 7,
  parameter integer LANES     = 8,    // output rows per output-unit beat
  parameter integer ADC_BITS  = 8,    // by
  parameter integer PART_EXP  = 8,    // partial format
  parameter integer PART_MAN  = 7,
  parameter integer ACC_EXP   = 8,    // accumulator format
  parameter integer ACC_MAN   = 23,
  parameter integer OUT_EXP   = 8,    // output format
  parameter integer OUT_MAN   = 7,
  parameter integer DEPTH     = 1024, // words of every stimulus and capture memory
  parameter integer PATH_CHARS = 256  // longest memory file path
) (
  // Only the ports and the clock, which the bench uses, are public to Verilator: with every
  // signal public (cocotb's --public-flat-rw, turned off in tile_sim.py) it re-evaluates all
  // the logic at every evaluation step.
  /*verilator public_flat_rw_on*/
  input  wire                    rst_ni,
  // memory files: at a rising edge with load_i (dump_i), memory mem_sel_i is read from
  // (written to) the file path_i names: words 0 .. beats-1 of a stimulus memory (so set
  // iu_beats_i / ou_beats_i first), 0 .. count-1 of a capture
  input  wire [8*PATH_CHARS-1:0] path_i,
  input  wire [1:0]              mem_sel_i,  // 0 input beats, 1 ADC beats, 2/3 captures
  input  wire                    load_i,
  input  wire                    dump_i,
  // run control: the settings are taken at start_i
  input  wire                    start_i,
  input  wire [31:0]             iu_beats_i,    // input-unit beats to send
  input  wire [31:0]             iu_vectors_i,  // input-unit outputs to take
  input  wire [31:0]             ou_beats_i,    // output-unit beats to send
  input  wire [31:0]             ou_outputs_i,  // output-unit outputs to take
  input  wire [31:0]             budget_i,      // cycles before a run gives up
  input  wire [31:0]             seed_i,
  input  wire [15:0]             stall_i,       // idle probability times 2^16
  input  wire [31:0]             ou_k_i,
  output reg                     done_o,
  output reg  [31:0]             cycles_o,
  output reg  [31:0]             iu_count_o,
  output reg  [31:0]             ou_count_o,
  output reg  [31:0]             xz_errors_o    // valid outputs with X/Z bits (Icarus)
  /*verilator public_off*/
);
  localparam integer IN_W  = P * (1 + IN_EXP + IN_MAN);
  localparam integer SC_W  = 1 + SCALE_EXP + SCALE_MAN;
  localparam integer OUT_W = LANES * (1 + OUT_EXP + OUT_MAN);
  localparam integer OU_W  = LANES * ADC_BITS + LANES * SC_W + SC_W + 2;  // {last,first,sx,sw,qy}
  localparam integer IUC_W = 32 + SC_W + N * DAC_BITS;                    // {cycle,scale,codes}
  localparam integer OUC_W = 32 + OUT_W;                                  // {cycle,y}
  localparam integer NOISE_REP = (IN_W > OU_W ? IN_W : OU_W) / 32 + 1;

  localparam integer HALF_PERIOD = 5;  // time units of the runner's timescale (1 ns)
  reg clk /*verilator public_flat_rd*/ = 1'b0;
  always #(HALF_PERIOD) clk = ~clk;

  reg [IN_W-1:0]  iu_in_mem  [0:DEPTH-1];
  reg [OU_W-1:0]  ou_in_mem  [0:DEPTH-1];
  reg [IUC_W-1:0] iu_cap_mem [0:DEPTH-1];
  reg [OUC_W-1:0] ou_cap_mem [0:DEPTH-1];

  always @(posedge clk) begin
    if (load_i)
      case (mem_sel_i)
        2'd0: $readmemh(path_i, iu_in_mem, 0, iu_beats_i - 1);
        2'd1: $readmemh(path_i, ou_in_mem, 0, ou_beats_i - 1);
        default: ;
      endcase
    if (dump_i)
      case (mem_sel_i)
        2'd2: $writememh(path_i, iu_cap_mem, 0, iu_count_o - 1);
        2'd3: $writememh(path_i, ou_cap_mem, 0, ou_count_o - 1);
        default: ;
      endcase
  end

  // one maximal-length Galois LFSR per valid and ready
  function automatic [31:0] lfsr_next(input [31:0] s);
    lfsr_next = (s >> 1) ^ (s[0] ? 32'h80200003 : 32'h0);
  endfunction
  reg [31:0] iu_in_lfsr, iu_out_lfsr, ou_in_lfsr, ou_out_lfsr;
  reg        running;
  reg [31:0] iu_sent, ou_sent;
  // The run settings, taken at start_i: logic fed by top-level inputs is what Verilator
  // re-evaluates at every evaluation step, so the datapath must depend on registers only.
  reg [31:0] iu_beats_q, ou_beats_q, iu_vectors_q, ou_outputs_q, budget_q, k_q;
  reg [15:0] stall_q;

  wire [32*NOISE_REP-1:0] iu_noise = {NOISE_REP{iu_in_lfsr}};
  wire [32*NOISE_REP-1:0] ou_noise = {NOISE_REP{ou_in_lfsr}};
  wire iu_pending = running && iu_sent < iu_beats_q;
  wire ou_pending = running && ou_sent < ou_beats_q;
  wire iu_in_valid   = iu_pending && iu_in_lfsr[15:0] >= stall_q;
  wire ou_in_valid   = ou_pending && ou_in_lfsr[15:0] >= stall_q;
  wire iu_out_ready  = running && iu_out_lfsr[15:0] >= stall_q;
  wire ou_out_ready  = running && ou_out_lfsr[15:0] >= stall_q;
  wire [IN_W-1:0] iu_word = iu_in_mem[iu_pending ? iu_sent : 32'd0];
  wire [OU_W-1:0] ou_word = ou_in_mem[ou_pending ? ou_sent : 32'd0];
  wire [IN_W-1:0] iu_in_data = iu_in_valid ? iu_word : iu_noise[IN_W-1:0];
  wire [OU_W-1:0] ou_in_data = ou_in_valid ? ou_word : ou_noise[OU_W-1:0];

  wire                   iu_in_ready, iu_out_valid, iu_nonfinite;
  wire [SC_W-1:0]        iu_out_scale;
  wire [N*DAC_BITS-1:0]  iu_out_codes;
  wire                   ou_in_ready, ou_out_valid;
  wire [OUT_W-1:0]       ou_y;

  abfp_input_unit #(
    .N(N), .P(P), .DAC_BITS(DAC_BITS), .IN_EXP(IN_EXP), .IN_MAN(IN_MAN),
    .SCALE_EXP(SCALE_EXP), .SCALE_MAN(SCALE_MAN)
  ) u_input (
    .clk_i(clk), .rst_ni(rst_ni),
    .in_valid_i(iu_in_valid), .in_ready_o(iu_in_ready), .in_data_i(iu_in_data),
    .out_valid_o(iu_out_valid), .out_ready_i(iu_out_ready),
    .out_scale_o(iu_out_scale), .out_codes_o(iu_out_codes), .nonfinite_o(iu_nonfinite)
  );

  abfp_output_unit #(
    .LANES(LANES), .ADC_BITS(ADC_BITS), .SCALE_EXP(SCALE_EXP), .SCALE_MAN(SCALE_MAN),
    .PART_EXP(PART_EXP), .PART_MAN(PART_MAN), .ACC_EXP(ACC_EXP), .ACC_MAN(ACC_MAN),
    .OUT_EXP(OUT_EXP), .OUT_MAN(OUT_MAN)
  ) u_output (
    .clk_i(clk), .rst_ni(rst_ni), .k_i(k_q),
    .in_valid_i(ou_in_valid), .in_ready_o(ou_in_ready),
    .qy_i(ou_in_data[LANES*ADC_BITS-1:0]),
    .sw_i(ou_in_data[LANES*ADC_BITS +: LANES*SC_W]),
    .sx_i(ou_in_data[LANES*ADC_BITS + LANES*SC_W +: SC_W]),
    .first_i(ou_in_data[OU_W-2]), .last_i(ou_in_data[OU_W-1]),
    .out_valid_o(ou_out_valid), .out_ready_i(ou_out_ready), .y_o(ou_y)
  );

  wire iu_take = iu_out_valid && iu_out_ready;
  wire ou_take = ou_out_valid && ou_out_ready;
  // A valid (or its data) holding X/Z is a protocol error; 2-state simulators never see one.
  wire iu_xz = (^iu_out_valid === 1'bx) || (iu_out_valid && ^{iu_out_scale, iu_out_codes} === 1'bx);
  wire ou_xz = (^ou_out_valid === 1'bx) || (ou_out_valid && ^ou_y === 1'bx);

  wire capturing = rst_ni && running && !start_i;
  wire iu_capture = capturing && iu_take && !iu_xz && iu_count_o < DEPTH;
  wire ou_capture = capturing && ou_take && !ou_xz && ou_count_o < DEPTH;
  always @(posedge clk) begin
    if (iu_capture) iu_cap_mem[iu_count_o] <= {cycles_o, iu_out_scale, iu_out_codes};
    if (ou_capture) ou_cap_mem[ou_count_o] <= {cycles_o, ou_y};
  end

  always @(posedge clk or negedge rst_ni) begin
    if (!rst_ni) begin
      // the counters and LFSRs start with every run
      running <= 1'b0;
      done_o <= 1'b0;
    end else if (start_i) begin
      running <= 1'b1;
      done_o <= 1'b0;
      iu_beats_q <= iu_beats_i;
      ou_beats_q <= ou_beats_i;
      iu_vectors_q <= iu_vectors_i;
      ou_outputs_q <= ou_outputs_i;
      budget_q <= budget_i;
      stall_q <= stall_i;
      k_q <= ou_k_i;
      cycles_o <= 32'd0;
      iu_sent <= 32'd0;
      ou_sent <= 32'd0;
      iu_count_o <= 32'd0;
      ou_count_o <= 32'd0;
      xz_errors_o <= 32'd0;
      iu_in_lfsr <= seed_i ^ 32'h1234_5679;
      iu_out_lfsr <= seed_i ^ 32'h2468_ace1;
      ou_in_lfsr <= seed_i ^ 32'h0f0f_3c3b;
      ou_out_lfsr <= seed_i ^ 32'h7531_9bdf;
    end else if (running) begin
      cycles_o <= cycles_o + 32'd1;
      iu_in_lfsr <= lfsr_next(iu_in_lfsr);
      iu_out_lfsr <= lfsr_next(iu_out_lfsr);
      ou_in_lfsr <= lfsr_next(ou_in_lfsr);
      ou_out_lfsr <= lfsr_next(ou_out_lfsr);
      if (iu_in_valid && iu_in_ready) iu_sent <= iu_sent + 32'd1;
      if (ou_in_valid && ou_in_ready) ou_sent <= ou_sent + 32'd1;
      if (iu_xz || ou_xz) xz_errors_o <= xz_errors_o + 32'd1;
      if (iu_capture) iu_count_o <= iu_count_o + 32'd1;
      if (ou_capture) ou_count_o <= ou_count_o + 32'd1;
      if ((iu_count_o >= iu_vectors_q && ou_count_o >= ou_outputs_q) || cycles_o >= budget_q)
      begin
        running <= 1'b0;
        done_o <= 1'b1;
      end
    end
  end
endmodule

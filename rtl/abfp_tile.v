// ABFP tile controller: one whole matrix product y = x w^T through the input unit, the analog
// array (outside this module, on the DAC and ADC ports) and the output unit (docs/rtl_tile.md).
//
// A command (rows M, tiles T = ceil(K/n), output-row groups G = N_out/LANES, each given as the
// count minus one) starts a product. For every input row m the controller
//   1. takes the T vectors (codes and sx) of row m from abfp_input_unit into its tile buffer
//      (x arrives on the x port, N/P beats per vector, tile after tile, row after row);
//   2. for g = 0..G-1, j = 0..T-1 sends DAC beat (codes_j, sx_j, tile j, group g) to the array;
//   3. takes each conversion's LANES ADC codes back in ADC_SHARE beats of LANES/ADC_SHARE codes
//      (one ADC per ADC_SHARE rows, time-multiplexed: ADC a converts rows a*ADC_SHARE + r in
//      beats r = 0..ADC_SHARE-1), and hands the assembled group with its row scales sw(g, j)
//      from the weight-scale store and sx_j to abfp_output_unit, marked first at j = 0 and
//      last at j = T-1.
// Row m+1 is loaded once every beat of row m has entered the output unit. Conversions return
// in the order they were sent; the controller works with any array latency (valid/ready on
// both array ports). Outputs leave in (m, g) order on the y port, one beat of LANES values.
//
// The weight-scale store holds sw for 2^GROUP_BITS groups x 2^TILE_BITS tiles (LANES scales
// a word, word {group, tile}); it is written through the ws port while no product runs.
`include "abfp_param_check.vh"

module abfp_tile #(
  parameter integer N          = 128,  // tile width n: elements per vector, 1..1024
  parameter integer P          = 16,   // x elements per input beat, 1..N, divides N
  parameter integer DAC_BITS   = 8,    // DAC code width bx, 2..16
  parameter integer IN_EXP     = 8,    // exponent bits of the input format, 2..8
  parameter integer IN_MAN     = 7,    // mantissa bits of the input format, 1..23
  parameter integer SCALE_EXP  = 8,    // exponent bits of the block scales sw and sx, 2..8
  parameter integer SCALE_MAN  = 7,    // mantissa bits of the block scales, 1..23
  parameter integer LANES      = 4,    // output rows per group and output beat, 1..256
  parameter integer ADC_BITS   = 8,    // ADC code width by, 2..16
  parameter integer PART_EXP   = 8,    // exponent bits of the per-tile partial, 2..8
  parameter integer PART_MAN   = 7,    // mantissa bits of the partial, 1..23
  parameter integer ACC_EXP    = 8,    // exponent bits of the accumulator, PART_EXP..8
  parameter integer ACC_MAN    = 23,   // mantissa bits of the accumulator, PART_MAN..23
  parameter integer OUT_EXP    = 8,    // exponent bits of the output y, 2..8
  parameter integer OUT_MAN    = 7,    // mantissa bits of the output, 1..23
  parameter integer ADC_SHARE  = 1,    // output rows per ADC (R), 1..LANES, divides LANES
  parameter integer TILE_BITS  = 2,    // up to 2^TILE_BITS tiles per product, 1..8
  parameter integer GROUP_BITS = 2,    // up to 2^GROUP_BITS output-row groups, 1..8
  parameter integer ROW_BITS   = 16    // up to 2^ROW_BITS input rows per product, 1..31
) (
  input  wire                                 clk_i,
  input  wire                                 rst_ni,
  input  wire [31:0]                          k_i,           // fp32 K of the output unit
  // command: a product of rows_i+1 rows, tiles_i+1 tiles, groups_i+1 groups
  input  wire                                 cmd_valid_i,
  output wire                                 cmd_ready_o,
  input  wire [ROW_BITS-1:0]                  cmd_rows_i,
  input  wire [TILE_BITS-1:0]                 cmd_tiles_i,
  input  wire [GROUP_BITS-1:0]                cmd_groups_i,
  // weight-scale store: word {ws_group_i, ws_tile_i} = LANES row scales, lane l at [l*SW +: SW]
  input  wire                                 ws_valid_i,
  output wire                                 ws_ready_o,
  input  wire [TILE_BITS-1:0]                 ws_tile_i,
  input  wire [GROUP_BITS-1:0]                ws_group_i,
  input  wire [LANES*(1+SCALE_EXP+SCALE_MAN)-1:0] ws_data_i,
  // x: N/P beats per vector, vectors in (row, tile) order, element j of a beat at [j*IN_W +:]
  input  wire                                 x_valid_i,
  output wire                                 x_ready_o,
  input  wire [P*(1+IN_EXP+IN_MAN)-1:0]       x_data_i,
  output wire                                 nonfinite_o,   // sticky: an x was inf or NaN
  // analog array: one DAC beat per (row, group, tile)
  output wire                                 dac_valid_o,
  input  wire                                 dac_ready_i,
  output wire [N*DAC_BITS-1:0]                dac_codes_o,   // element k at [k*DAC_BITS +:]
  output wire [SCALE_EXP+SCALE_MAN:0]         dac_sx_o,
  output wire [TILE_BITS-1:0]                 dac_tile_o,
  output wire [GROUP_BITS-1:0]                dac_group_o,
  // ADC codes: ADC_SHARE beats per conversion, ADC a's code at [a*ADC_BITS +: ADC_BITS]
  input  wire                                 adc_valid_i,
  output wire                                 adc_ready_o,
  input  wire [(LANES/ADC_SHARE)*ADC_BITS-1:0] adc_codes_i,
  // outputs: one beat of LANES values per (row, group)
  output wire                                 y_valid_o,
  input  wire                                 y_ready_i,
  output wire [LANES*(1+OUT_EXP+OUT_MAN)-1:0] y_o
);
  // P and ADC_SHARE as divisors: themselves when legal, else 1, so that an illegal value is
  // reported by its check rather than by a division by zero.
  localparam integer P_DIV     = (P > 0) ? P : 1;
  localparam integer SHARE_DIV = (ADC_SHARE > 0) ? ADC_SHARE : 1;

  generate
    `ABFP_CHECK_RANGE(abfp_tile, N, 1, 1024)
    `ABFP_CHECK_RANGE(abfp_tile, P, 1, N)
    `ABFP_CHECK_RULE(abfp_tile, P_must_divide_N, (N % P_DIV) == 0)
    `ABFP_CHECK_RANGE(abfp_tile, DAC_BITS, 2, 16)
    `ABFP_CHECK_RANGE(abfp_tile, IN_EXP, 2, 8)
    `ABFP_CHECK_RANGE(abfp_tile, IN_MAN, 1, 23)
    `ABFP_CHECK_RANGE(abfp_tile, SCALE_EXP, 2, 8)
    `ABFP_CHECK_RANGE(abfp_tile, SCALE_MAN, 1, 23)
    `ABFP_CHECK_RANGE(abfp_tile, LANES, 1, 256)
    `ABFP_CHECK_RANGE(abfp_tile, ADC_BITS, 2, 16)
    `ABFP_CHECK_RANGE(abfp_tile, PART_EXP, 2, 8)
    `ABFP_CHECK_RANGE(abfp_tile, PART_MAN, 1, 23)
    `ABFP_CHECK_RANGE(abfp_tile, ACC_EXP, PART_EXP, 8)
    `ABFP_CHECK_RANGE(abfp_tile, ACC_MAN, PART_MAN, 23)
    `ABFP_CHECK_RANGE(abfp_tile, OUT_EXP, 2, 8)
    `ABFP_CHECK_RANGE(abfp_tile, OUT_MAN, 1, 23)
    `ABFP_CHECK_RANGE(abfp_tile, ADC_SHARE, 1, LANES)
    `ABFP_CHECK_RULE(abfp_tile, ADC_SHARE_must_divide_LANES, (LANES % SHARE_DIV) == 0)
    `ABFP_CHECK_RANGE(abfp_tile, TILE_BITS, 1, 8)
    `ABFP_CHECK_RANGE(abfp_tile, GROUP_BITS, 1, 8)
    `ABFP_CHECK_RANGE(abfp_tile, ROW_BITS, 1, 31)
  endgenerate

  localparam integer SW        = 1 + SCALE_EXP + SCALE_MAN;
  localparam integer CODE_W    = N * DAC_BITS;
  localparam integer ADCS      = LANES / SHARE_DIV;
  localparam integer SUB_W     = (ADC_SHARE > 1) ? $clog2(SHARE_DIV) : 1;
  localparam integer SUB_LAST_INT = ADC_SHARE - 1;
  localparam [SUB_W-1:0] SUB_LAST = SUB_LAST_INT[SUB_W-1:0];
  localparam integer TILES     = 1 << TILE_BITS;
  localparam integer WORDS     = 1 << (TILE_BITS + GROUP_BITS);

  localparam [1:0] S_IDLE = 2'd0;  // waiting for a command; the store may be written
  localparam [1:0] S_LOAD = 2'd1;  // taking the T vectors of the current row
  localparam [1:0] S_RUN  = 2'd2;  // sending the row's conversions and taking them back

  // ---------------------------------------------------------------------------------------
  // State.
  reg  [1:0]            state_d, state_q;
  reg  [ROW_BITS-1:0]   row_d, row_q, rows_last_d, rows_last_q;
  reg  [TILE_BITS-1:0]  tiles_last_d, tiles_last_q;
  reg  [GROUP_BITS-1:0] groups_last_d, groups_last_q;
  reg  [TILE_BITS-1:0]  load_j_d, load_j_q;                 // next buffer slot to load
  reg  [TILE_BITS-1:0]  iss_j_d, iss_j_q;                   // next conversion to send
  reg  [GROUP_BITS-1:0] iss_g_d, iss_g_q;
  reg                   iss_done_d, iss_done_q;             // every conversion of the row sent
  reg  [TILE_BITS-1:0]  ret_j_d, ret_j_q;                   // next conversion to hand on
  reg  [GROUP_BITS-1:0] ret_g_d, ret_g_q;
  reg  [SUB_W-1:0]      sub_d, sub_q;                       // next ADC beat of the conversion
  reg                   asm_full_d, asm_full_q;             // a whole group waits in asm_qy
  reg  [LANES*ADC_BITS-1:0] asm_qy_d, asm_qy_q;

  // Tile buffer (the current row's vectors) and weight-scale store.
  reg  [CODE_W-1:0]     buf_codes_q [0:TILES-1];
  reg  [SW-1:0]         buf_sx_q [0:TILES-1];
  reg  [LANES*SW-1:0]   store_q [0:WORDS-1];

  // ---------------------------------------------------------------------------------------
  // Units.
  wire                  iu_valid;
  wire [SW-1:0]         iu_scale;
  wire [CODE_W-1:0]     iu_codes;
  wire                  ou_ready;
  reg                   iu_ready, cmd_fire, ws_fire, load_fire, dac_fire, adc_fire, ou_fire;
  reg                   row_done;

  abfp_input_unit #(
    .N(N), .P(P), .DAC_BITS(DAC_BITS), .IN_EXP(IN_EXP), .IN_MAN(IN_MAN),
    .SCALE_EXP(SCALE_EXP), .SCALE_MAN(SCALE_MAN)
  ) u_input (
    .clk_i(clk_i), .rst_ni(rst_ni),
    .in_valid_i(x_valid_i), .in_ready_o(x_ready_o), .in_data_i(x_data_i),
    .out_valid_o(iu_valid), .out_ready_i(iu_ready),
    .out_scale_o(iu_scale), .out_codes_o(iu_codes), .nonfinite_o(nonfinite_o)
  );

  abfp_output_unit #(
    .LANES(LANES), .ADC_BITS(ADC_BITS), .SCALE_EXP(SCALE_EXP), .SCALE_MAN(SCALE_MAN),
    .PART_EXP(PART_EXP), .PART_MAN(PART_MAN), .ACC_EXP(ACC_EXP), .ACC_MAN(ACC_MAN),
    .OUT_EXP(OUT_EXP), .OUT_MAN(OUT_MAN)
  ) u_output (
    .clk_i(clk_i), .rst_ni(rst_ni), .k_i(k_i),
    .in_valid_i(asm_full_q), .in_ready_o(ou_ready),
    .qy_i(asm_qy_q), .sw_i(store_q[{ret_g_q, ret_j_q}]), .sx_i(buf_sx_q[ret_j_q]),
    .first_i(ret_j_q == {TILE_BITS{1'b0}}), .last_i(ret_j_q == tiles_last_q),
    .out_valid_o(y_valid_o), .out_ready_i(y_ready_i), .y_o(y_o)
  );

  assign cmd_ready_o = (state_q == S_IDLE);
  assign ws_ready_o  = (state_q == S_IDLE);
  assign dac_valid_o = (state_q == S_RUN) && !iss_done_q;
  assign dac_codes_o = buf_codes_q[iss_j_q];
  assign dac_sx_o    = buf_sx_q[iss_j_q];
  assign dac_tile_o  = iss_j_q;
  assign dac_group_o = iss_g_q;
  // A group may arrive while the previous one moves into the output unit.
  assign adc_ready_o = !asm_full_q || ou_ready;

  // ---------------------------------------------------------------------------------------
  // Handshakes and next state.
  integer a, r;
  always @* begin
    iu_ready  = (state_q == S_LOAD);
    cmd_fire  = cmd_valid_i && cmd_ready_o;
    ws_fire   = ws_valid_i && ws_ready_o;
    load_fire = iu_valid && iu_ready;
    dac_fire  = dac_valid_o && dac_ready_i;
    adc_fire  = adc_valid_i && adc_ready_o;
    ou_fire   = asm_full_q && ou_ready;
    row_done  = ou_fire && (ret_j_q == tiles_last_q) && (ret_g_q == groups_last_q);

    state_d       = state_q;
    row_d         = row_q;
    rows_last_d   = rows_last_q;
    tiles_last_d  = tiles_last_q;
    groups_last_d = groups_last_q;
    load_j_d      = load_j_q;
    iss_j_d       = iss_j_q;
    iss_g_d       = iss_g_q;
    iss_done_d    = iss_done_q;
    ret_j_d       = ret_j_q;
    ret_g_d       = ret_g_q;
    sub_d         = sub_q;
    asm_full_d    = asm_full_q && !ou_fire;
    asm_qy_d      = asm_qy_q;

    if (cmd_fire) begin
      state_d       = S_LOAD;
      row_d         = {ROW_BITS{1'b0}};
      rows_last_d   = cmd_rows_i;
      tiles_last_d  = cmd_tiles_i;
      groups_last_d = cmd_groups_i;
    end

    if (load_fire) begin
      if (load_j_q == tiles_last_q) begin
        load_j_d = {TILE_BITS{1'b0}};
        state_d  = S_RUN;
      end else begin
        load_j_d = load_j_q + 1'b1;
      end
    end

    if (dac_fire) begin
      if (iss_j_q == tiles_last_q) begin
        iss_j_d = {TILE_BITS{1'b0}};
        if (iss_g_q == groups_last_q) begin
          iss_g_d    = {GROUP_BITS{1'b0}};
          iss_done_d = 1'b1;
        end else begin
          iss_g_d = iss_g_q + 1'b1;
        end
      end else begin
        iss_j_d = iss_j_q + 1'b1;
      end
    end

    if (adc_fire) begin
      for (a = 0; a < ADCS; a = a + 1) begin
        for (r = 0; r < ADC_SHARE; r = r + 1) begin
          if (sub_q == r[SUB_W-1:0]) begin
            asm_qy_d[(a*ADC_SHARE + r)*ADC_BITS +: ADC_BITS] = adc_codes_i[a*ADC_BITS +: ADC_BITS];
          end
        end
      end
      if (sub_q == SUB_LAST) begin
        sub_d      = {SUB_W{1'b0}};
        asm_full_d = 1'b1;
      end else begin
        sub_d = sub_q + 1'b1;
      end
    end

    if (ou_fire) begin
      if (ret_j_q == tiles_last_q) begin
        ret_j_d = {TILE_BITS{1'b0}};
        ret_g_d = (ret_g_q == groups_last_q) ? {GROUP_BITS{1'b0}} : ret_g_q + 1'b1;
      end else begin
        ret_j_d = ret_j_q + 1'b1;
      end
    end

    if (row_done) begin
      iss_done_d = 1'b0;
      if (row_q == rows_last_q) begin
        state_d = S_IDLE;
      end else begin
        row_d   = row_q + 1'b1;
        state_d = S_LOAD;
      end
    end
  end

  // Control state is reset; the command registers are written before they are read.
  always @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      state_q    <= S_IDLE;
      row_q      <= {ROW_BITS{1'b0}};
      load_j_q   <= {TILE_BITS{1'b0}};
      iss_j_q    <= {TILE_BITS{1'b0}};
      iss_g_q    <= {GROUP_BITS{1'b0}};
      iss_done_q <= 1'b0;
      ret_j_q    <= {TILE_BITS{1'b0}};
      ret_g_q    <= {GROUP_BITS{1'b0}};
      sub_q      <= {SUB_W{1'b0}};
      asm_full_q <= 1'b0;
    end else begin
      state_q    <= state_d;
      row_q      <= row_d;
      load_j_q   <= load_j_d;
      iss_j_q    <= iss_j_d;
      iss_g_q    <= iss_g_d;
      iss_done_q <= iss_done_d;
      ret_j_q    <= ret_j_d;
      ret_g_q    <= ret_g_d;
      sub_q      <= sub_d;
      asm_full_q <= asm_full_d;
    end
  end

  // Datapath registers and memories are not reset: each is written before it is read (the
  // command registers at the command, a buffer slot when its vector is loaded, a store word
  // by the ws port, the assembly register by its group's ADC beats).
  always @(posedge clk_i) begin
    rows_last_q   <= rows_last_d;
    tiles_last_q  <= tiles_last_d;
    groups_last_q <= groups_last_d;
    asm_qy_q      <= asm_qy_d;
    if (load_fire) begin
      buf_codes_q[load_j_q] <= iu_codes;
      buf_sx_q[load_j_q]    <= iu_scale;
    end
    if (ws_fire) begin
      store_q[{ws_group_i, ws_tile_i}] <= ws_data_i;
    end
  end

endmodule

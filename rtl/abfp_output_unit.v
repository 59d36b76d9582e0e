// ABFP output unit: digital rescale, cross-tile accumulation and output rounding (SPEC steps
// 8-10) for LANES output rows in parallel.
//
// Per lane and accepted beat:   sy  = sw (x)fp32 sx
//                               t   = fp32(qy) (x)fp32 sy
//                               u   = t (x)fp32 K
//                               p   = to(partial, u)
//                               acc = first ? widen(p) : acc (+)acc widen(p)
// and on a beat marked last:    y   = to(out, acc), sent as one output beat of LANES values.
//
// Pipeline (one floating-point operation per stage, registers at the end of each):
//   S1 fp32(qy), sy | S2 t | S3 u | S4 p | S5 acc | S6 y
// A beat accepted at clock edge c shows its output (if marked last) from edge c + LATENCY on,
// with LATENCY = 6. All stages advance together whenever the output register is empty or
// being read; so the unit takes one beat per clock while out_ready_i is high, stalls without
// loss or duplication while an output waits, and in_ready_o = ~out_valid_o | out_ready_i.
// k_i is a configuration input: hold it stable while beats are in flight.
// After reset the accumulators hold +0 and no beat is in flight.
module abfp_output_unit #(
  parameter integer LANES     = 4,   // output rows processed in parallel, 1..256
  parameter integer ADC_BITS  = 8,   // signed ADC code width, 2..16
  parameter integer SCALE_EXP = 8,   // exponent bits of the block scales sw and sx, 2..8
  parameter integer SCALE_MAN = 7,   // mantissa bits of the block scales, 1..23
  parameter integer PART_EXP  = 8,   // exponent bits of the per-tile partial p, 2..8
  parameter integer PART_MAN  = 7,   // mantissa bits of the partial, 1..23
  parameter integer ACC_EXP   = 8,   // exponent bits of the accumulator, PART_EXP..8
  parameter integer ACC_MAN   = 23,  // mantissa bits of the accumulator, PART_MAN..23
  parameter integer OUT_EXP   = 8,   // exponent bits of the output y, 2..8
  parameter integer OUT_MAN   = 7    // mantissa bits of the output, 1..23
) (
  input  wire                             clk_i,
  input  wire                             rst_ni,
  input  wire [31:0]                      k_i,          // fp32 bits of K = to(fp32, n/(M(by)*G))
  // input beat
  input  wire                             in_valid_i,
  output wire                             in_ready_o,
  input  wire [LANES*ADC_BITS-1:0]        qy_i,         // lane l at [l*ADC_BITS +: ADC_BITS]
  input  wire [LANES*(1+SCALE_EXP+SCALE_MAN)-1:0] sw_i, // row scales, lane l likewise
  input  wire [SCALE_EXP+SCALE_MAN:0]     sx_i,         // input scale shared by all lanes
  input  wire                             first_i,      // first tile: restart the accumulators
  input  wire                             last_i,       // last tile: emit the outputs
  // output beat
  output wire                             out_valid_o,
  input  wire                             out_ready_i,
  output wire [LANES*(1+OUT_EXP+OUT_MAN)-1:0] y_o       // lane l at [l*OUT_W +: OUT_W]
);
  generate
    if (LANES < 1 || LANES > 256) begin : g_lanes_range
      abfp_output_unit_parameter_LANES_out_of_range_1_to_256 u_check ();
    end
    if (ADC_BITS < 2 || ADC_BITS > 16) begin : g_adc_bits_range
      abfp_output_unit_parameter_ADC_BITS_out_of_range_2_to_16 u_check ();
    end
    if (SCALE_EXP < 2 || SCALE_EXP > 8) begin : g_scale_exp_range
      abfp_output_unit_parameter_SCALE_EXP_out_of_range_2_to_8 u_check ();
    end
    if (SCALE_MAN < 1 || SCALE_MAN > 23) begin : g_scale_man_range
      abfp_output_unit_parameter_SCALE_MAN_out_of_range_1_to_23 u_check ();
    end
    if (PART_EXP < 2 || PART_EXP > 8) begin : g_part_exp_range
      abfp_output_unit_parameter_PART_EXP_out_of_range_2_to_8 u_check ();
    end
    if (PART_MAN < 1 || PART_MAN > 23) begin : g_part_man_range
      abfp_output_unit_parameter_PART_MAN_out_of_range_1_to_23 u_check ();
    end
    // The accumulator starts from the partial widened exactly, so it must hold every partial.
    if (ACC_EXP < PART_EXP || ACC_EXP > 8) begin : g_acc_exp_range
      abfp_output_unit_parameter_ACC_EXP_out_of_range_PART_EXP_to_8 u_check ();
    end
    if (ACC_MAN < PART_MAN || ACC_MAN > 23) begin : g_acc_man_range
      abfp_output_unit_parameter_ACC_MAN_out_of_range_PART_MAN_to_23 u_check ();
    end
    if (OUT_EXP < 2 || OUT_EXP > 8) begin : g_out_exp_range
      abfp_output_unit_parameter_OUT_EXP_out_of_range_2_to_8 u_check ();
    end
    if (OUT_MAN < 1 || OUT_MAN > 23) begin : g_out_man_range
      abfp_output_unit_parameter_OUT_MAN_out_of_range_1_to_23 u_check ();
    end
  endgenerate

  localparam integer SCALE_W = 1 + SCALE_EXP + SCALE_MAN;
  localparam integer PART_W  = 1 + PART_EXP + PART_MAN;
  localparam integer ACC_W   = 1 + ACC_EXP + ACC_MAN;
  localparam integer OUT_W   = 1 + OUT_EXP + OUT_MAN;

  // Every stage moves on together unless a finished output is waiting to be taken.
  reg  out_valid_q;
  wire advance = ~out_valid_q | out_ready_i;
  wire accept  = in_valid_i & advance;

  // Per-stage beat marks: valid, first tile, last tile.
  reg  s1_valid_q, s2_valid_q, s3_valid_q, s4_valid_q, s5_valid_q;
  reg  s1_first_q, s2_first_q, s3_first_q, s4_first_q;
  reg  s1_last_q, s2_last_q, s3_last_q, s4_last_q, s5_last_q;
  reg  s1_valid_d, s2_valid_d, s3_valid_d, s4_valid_d, s5_valid_d, out_valid_d;
  reg  s1_first_d, s2_first_d, s3_first_d, s4_first_d;
  reg  s1_last_d, s2_last_d, s3_last_d, s4_last_d, s5_last_d;

  always @* begin
    s1_valid_d  = s1_valid_q;
    s2_valid_d  = s2_valid_q;
    s3_valid_d  = s3_valid_q;
    s4_valid_d  = s4_valid_q;
    s5_valid_d  = s5_valid_q;
    out_valid_d = out_valid_q;
    s1_first_d  = s1_first_q;
    s2_first_d  = s2_first_q;
    s3_first_d  = s3_first_q;
    s4_first_d  = s4_first_q;
    s1_last_d   = s1_last_q;
    s2_last_d   = s2_last_q;
    s3_last_d   = s3_last_q;
    s4_last_d   = s4_last_q;
    s5_last_d   = s5_last_q;
    if (advance) begin
      s1_valid_d  = in_valid_i;
      s2_valid_d  = s1_valid_q;
      s3_valid_d  = s2_valid_q;
      s4_valid_d  = s3_valid_q;
      s5_valid_d  = s4_valid_q;
      out_valid_d = s5_valid_q & s5_last_q;
      s1_first_d  = first_i;
      s2_first_d  = s1_first_q;
      s3_first_d  = s2_first_q;
      s4_first_d  = s3_first_q;
      s1_last_d   = last_i;
      s2_last_d   = s1_last_q;
      s3_last_d   = s2_last_q;
      s4_last_d   = s3_last_q;
      s5_last_d   = s4_last_q;
    end
  end

  always @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      s1_valid_q  <= 1'b0;
      s2_valid_q  <= 1'b0;
      s3_valid_q  <= 1'b0;
      s4_valid_q  <= 1'b0;
      s5_valid_q  <= 1'b0;
      out_valid_q <= 1'b0;
      s1_first_q  <= 1'b0;
      s2_first_q  <= 1'b0;
      s3_first_q  <= 1'b0;
      s4_first_q  <= 1'b0;
      s1_last_q   <= 1'b0;
      s2_last_q   <= 1'b0;
      s3_last_q   <= 1'b0;
      s4_last_q   <= 1'b0;
      s5_last_q   <= 1'b0;
    end else begin
      s1_valid_q  <= s1_valid_d;
      s2_valid_q  <= s2_valid_d;
      s3_valid_q  <= s3_valid_d;
      s4_valid_q  <= s4_valid_d;
      s5_valid_q  <= s5_valid_d;
      out_valid_q <= out_valid_d;
      s1_first_q  <= s1_first_d;
      s2_first_q  <= s2_first_d;
      s3_first_q  <= s3_first_d;
      s4_first_q  <= s4_first_d;
      s1_last_q   <= s1_last_d;
      s2_last_q   <= s2_last_d;
      s3_last_q   <= s3_last_d;
      s4_last_q   <= s4_last_d;
      s5_last_q   <= s5_last_d;
    end
  end

  genvar lane;
  generate
    for (lane = 0; lane < LANES; lane = lane + 1) begin : g_lane
      wire [ADC_BITS-1:0] qy = qy_i[lane*ADC_BITS +: ADC_BITS];
      wire [SCALE_W-1:0]  sw = sw_i[lane*SCALE_W +: SCALE_W];
      wire [31:0]         qy_fp32, sy, t, u;
      wire [PART_W-1:0]   p;
      wire [ACC_W-1:0]    p_wide, acc_sum;
      wire [OUT_W-1:0]    y;

      reg  [31:0]         qy_fp32_q, qy_fp32_d, sy_q, sy_d, t_q, t_d, u_q, u_d;
      reg  [PART_W-1:0]   p_q, p_d;
      reg  [ACC_W-1:0]    acc_q, acc_d;
      reg  [OUT_W-1:0]    y_q, y_d;

      // S1: the code to fp32 (exact for ADC_BITS <= 16) and sy = sw (x)fp32 sx.
      fp_int_to_float #(.W(ADC_BITS), .EXP(8), .MAN(23)) u_qy_to_fp32 (
        .int_i(qy), .y_o(qy_fp32)
      );
      fp_mul #(
        .A_EXP(SCALE_EXP), .A_MAN(SCALE_MAN), .B_EXP(SCALE_EXP), .B_MAN(SCALE_MAN),
        .O_EXP(8), .O_MAN(23)
      ) u_sy (
        .a_i(sw), .b_i(sx_i), .prod_o(sy)
      );
      // S2: t = fp32(qy) (x)fp32 sy.
      fp_mul #(.A_EXP(8), .A_MAN(23), .B_EXP(8), .B_MAN(23), .O_EXP(8), .O_MAN(23)) u_t (
        .a_i(qy_fp32_q), .b_i(sy_q), .prod_o(t)
      );
      // S3: u = t (x)fp32 K.
      fp_mul #(.A_EXP(8), .A_MAN(23), .B_EXP(8), .B_MAN(23), .O_EXP(8), .O_MAN(23)) u_u (
        .a_i(t_q), .b_i(k_i), .prod_o(u)
      );
      // S4: p = to(partial, u).
      fp_convert #(.IN_EXP(8), .IN_MAN(23), .OUT_EXP(PART_EXP), .OUT_MAN(PART_MAN)) u_p (
        .a_i(u_q), .y_o(p)
      );
      // S5: the accumulator; its add closes the loop within this one stage.
      fp_convert #(.IN_EXP(PART_EXP), .IN_MAN(PART_MAN), .OUT_EXP(ACC_EXP), .OUT_MAN(ACC_MAN))
        u_widen (
        .a_i(p_q), .y_o(p_wide)
      );
      fp_add #(.EXP(ACC_EXP), .MAN(ACC_MAN)) u_acc (
        .a_i(acc_q), .b_i(p_wide), .sum_o(acc_sum)
      );
      // S6: y = to(out, acc) of the beat that closed the accumulation.
      fp_convert #(.IN_EXP(ACC_EXP), .IN_MAN(ACC_MAN), .OUT_EXP(OUT_EXP), .OUT_MAN(OUT_MAN))
        u_y (
        .a_i(acc_q), .y_o(y)
      );

      always @* begin
        qy_fp32_d = qy_fp32_q;
        sy_d      = sy_q;
        t_d       = t_q;
        u_d       = u_q;
        p_d       = p_q;
        acc_d     = acc_q;
        y_d       = y_q;
        if (accept) begin
          qy_fp32_d = qy_fp32;
          sy_d      = sy;
        end
        if (advance) begin
          t_d = t;
          u_d = u;
          p_d = p;
          if (s4_valid_q) begin
            acc_d = s4_first_q ? p_wide : acc_sum;
          end
          if (s5_valid_q & s5_last_q) begin
            y_d = y;
          end
        end
      end

      always @(posedge clk_i or negedge rst_ni) begin
        if (!rst_ni) begin
          qy_fp32_q <= 32'd0;
          sy_q      <= 32'd0;
          t_q       <= 32'd0;
          u_q       <= 32'd0;
          p_q       <= {PART_W{1'b0}};
          acc_q     <= {ACC_W{1'b0}};
          y_q       <= {OUT_W{1'b0}};
        end else begin
          qy_fp32_q <= qy_fp32_d;
          sy_q      <= sy_d;
          t_q       <= t_d;
          u_q       <= u_d;
          p_q       <= p_d;
          acc_q     <= acc_d;
          y_q       <= y_d;
        end
      end

      assign y_o[lane*OUT_W +: OUT_W] = y_q;
    end
  endgenerate

  assign in_ready_o  = advance;
  assign out_valid_o = out_valid_q;
endmodule

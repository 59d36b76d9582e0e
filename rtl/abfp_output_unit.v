// ABFP output unit: digital rescale, cross-tile accumulation and output rounding
// (docs/arithmetic.md steps 8-10) for LANES output rows in parallel.
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
`include "abfp_param_check.vh"

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
    `ABFP_CHECK_RANGE(abfp_output_unit, LANES, 1, 256)
    `ABFP_CHECK_RANGE(abfp_output_unit, ADC_BITS, 2, 16)
    `ABFP_CHECK_RANGE(abfp_output_unit, SCALE_EXP, 2, 8)
    `ABFP_CHECK_RANGE(abfp_output_unit, SCALE_MAN, 1, 23)
    `ABFP_CHECK_RANGE(abfp_output_unit, PART_EXP, 2, 8)
    `ABFP_CHECK_RANGE(abfp_output_unit, PART_MAN, 1, 23)
    // The accumulator starts from the partial widened exactly, so it must hold every partial.
    `ABFP_CHECK_RANGE(abfp_output_unit, ACC_EXP, PART_EXP, 8)
    `ABFP_CHECK_RANGE(abfp_output_unit, ACC_MAN, PART_MAN, 23)
    `ABFP_CHECK_RANGE(abfp_output_unit, OUT_EXP, 2, 8)
    `ABFP_CHECK_RANGE(abfp_output_unit, OUT_MAN, 1, 23)
  endgenerate

  localparam integer SCALE_W = 1 + SCALE_EXP + SCALE_MAN;
  localparam integer PART_W  = 1 + PART_EXP + PART_MAN;
  localparam integer ACC_W   = 1 + ACC_EXP + ACC_MAN;
  localparam integer OUT_W   = 1 + OUT_EXP + OUT_MAN;

  // Every stage moves on together unless a finished output is waiting to be taken.
  reg  out_valid_q;
  wire advance = ~out_valid_q | out_ready_i;
  wire accept  = in_valid_i & advance;

  // Per-stage beat marks, one shift register that moves with the pipe: bit s-1 of each vector
  // belongs to stage Ss. The first mark is needed up to S4 (it steers the S5 accumulator), the
  // valid and last marks up to S5 (S5's last beat loads S6).
  reg  [4:0] valid_q;  // S1..S5
  reg  [3:0] first_q;  // S1..S4
  reg  [4:0] last_q;   // S1..S5

  always @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      {out_valid_q, valid_q, first_q, last_q} <= {1'b0, 5'd0, 4'd0, 5'd0};
    end else if (advance) begin
      {out_valid_q, valid_q, first_q, last_q} <= {
        valid_q[4] & last_q[4],
        valid_q[3:0], in_valid_i,
        first_q[2:0], first_i,
        last_q[3:0], last_i
      };
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
          if (valid_q[3]) begin
            acc_d = first_q[3] ? p_wide : acc_sum;
          end
          if (valid_q[4] & last_q[4]) begin
            y_d = y;
          end
        end
      end

      // The accumulator is state (+0 after reset); the other stage registers are read only
      // under their beat's valid mark, so they are not reset.
      always @(posedge clk_i or negedge rst_ni) begin
        if (!rst_ni) begin
          acc_q <= {ACC_W{1'b0}};
        end else begin
          acc_q <= acc_d;
        end
      end

      always @(posedge clk_i) begin
        qy_fp32_q <= qy_fp32_d;
        sy_q      <= sy_d;
        t_q       <= t_d;
        u_q       <= u_d;
        p_q       <= p_d;
        y_q       <= y_d;
      end

      assign y_o[lane*OUT_W +: OUT_W] = y_q;
    end
  endgenerate

  assign in_ready_o  = advance;
  assign out_valid_o = out_valid_q;
endmodule

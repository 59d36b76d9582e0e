// IEEE-754 addition in one format (EXP, MAN): the exact sum rounded once with
// round-to-nearest-even, gradual underflow and overflow to infinity. NaN operands and
// inf + (-inf) give the canonical NaN; an exact zero sum is -0 only when both operands are -0
// (x + (-x) = +0 under round-to-nearest). Purely combinational.
`include "abfp_param_check.vh"
`include "fp_exp_width.vh"

module fp_add #(
  parameter integer EXP = 8,   // exponent bits, 2..8
  parameter integer MAN = 23   // mantissa bits, 1..23
) (
  input  wire [EXP+MAN:0] a_i,
  input  wire [EXP+MAN:0] b_i,
  output wire [EXP+MAN:0] sum_o
);
  generate
    `ABFP_CHECK_RANGE(fp_add, EXP, 2, 8)
    `ABFP_CHECK_RANGE(fp_add, MAN, 1, 23)
  endgenerate

  localparam integer EW = `FP_EXP_W;
  // Guard, round and sticky bits below the larger operand's significand: enough for a
  // correctly rounded sum (only an alignment shift of 0 or 1 can cancel more than one bit,
  // and such a shift loses nothing).
  localparam integer GRS = 3;
  localparam integer AW  = MAN + 1 + GRS;   // aligned significand width
  localparam integer SW  = AW + 1;          // sum width, with the carry bit
  localparam integer DW  = $clog2(AW + 1);  // alignment shift width, clamped to AW
  localparam [EW-1:0] ALIGN_CAP = AW[EW-1:0];
  localparam [EW-1:0] GRS_EW = GRS[EW-1:0];

  wire                 a_sign, b_sign, a_nan, b_nan, a_inf, b_inf;
  wire signed [EW-1:0] a_lsb_exp, b_lsb_exp;
  wire [MAN:0]         a_sig, b_sig;

  fp_unpack #(.EXP(EXP), .MAN(MAN), .EW(EW)) u_unpack_a (
    .bits_i(a_i), .sign_o(a_sign), .lsb_exp_o(a_lsb_exp), .sig_o(a_sig),
    .is_nan_o(a_nan), .is_inf_o(a_inf)
  );
  fp_unpack #(.EXP(EXP), .MAN(MAN), .EW(EW)) u_unpack_b (
    .bits_i(b_i), .sign_o(b_sign), .lsb_exp_o(b_lsb_exp), .sig_o(b_sig),
    .is_nan_o(b_nan), .is_inf_o(b_inf)
  );

  reg                  a_is_big;
  reg                  big_sign;
  reg [MAN:0]          big_sig, small_sig;
  reg signed [EW-1:0]  big_lsb_exp, exp_diff;
  reg [DW-1:0]         align;
  reg [2*AW-1:0]       small_wide;
  reg [AW-1:0]         small_aligned;
  reg [SW-1:0]         sig_sum;
  reg                  sum_sign;

  always @* begin
    // Magnitudes order like their bit patterns without the sign.
    a_is_big    = (a_i[EXP+MAN-1:0] >= b_i[EXP+MAN-1:0]);
    big_sign    = a_is_big ? a_sign : b_sign;
    big_sig     = a_is_big ? a_sig : b_sig;
    small_sig   = a_is_big ? b_sig : a_sig;
    big_lsb_exp = a_is_big ? a_lsb_exp : b_lsb_exp;
    exp_diff    = a_is_big ? a_lsb_exp - b_lsb_exp : b_lsb_exp - a_lsb_exp;
    align       = (exp_diff >= $signed(ALIGN_CAP)) ? AW[DW-1:0] : exp_diff[DW-1:0];
    small_wide  = {small_sig, {GRS{1'b0}}, {AW{1'b0}}} >> align;
    // Bits shifted out of the aligned window collapse into its sticky bit.
    small_aligned = small_wide[2*AW-1 -: AW] | {{(AW-1){1'b0}}, |small_wide[AW-1:0]};
    if (a_sign == b_sign) begin
      sig_sum = {1'b0, big_sig, {GRS{1'b0}}} + {1'b0, small_aligned};
    end else begin
      sig_sum = {1'b0, big_sig, {GRS{1'b0}}} - {1'b0, small_aligned};
    end
    sum_sign = (sig_sum == {SW{1'b0}}) ? (a_sign & b_sign) : big_sign;
  end

  wire nan_sum = a_nan | b_nan | (a_inf & b_inf & (a_sign ^ b_sign));
  wire inf_sum = a_inf | b_inf;
  wire inf_sign = a_inf ? a_sign : b_sign;

  fp_round_pack #(.SIG_W(SW), .EW(EW), .EXP(EXP), .MAN(MAN)) u_round (
    .sign_i(inf_sum ? inf_sign : sum_sign), .lsb_exp_i(big_lsb_exp - $signed(GRS_EW)),
    .sig_i(sig_sum), .nan_i(nan_sum), .inf_i(inf_sum), .bits_o(sum_o)
  );
endmodule

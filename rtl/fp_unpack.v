// Unpack an IEEE-like binary format (EXP exponent bits, MAN mantissa bits) into sign, integer
// significand and the unbiased exponent of the significand's least significant bit, so that a
// finite value equals (-1)^sign * sig_o * 2^lsb_exp_o. Subnormals keep a zero hidden bit and
// the minimum exponent; zeros have sig_o == 0. Purely combinational.
`include "abfp_param_check.vh"
`include "fp_exp_width.vh"

module fp_unpack #(
  parameter integer EXP = 8,   // exponent bits, 2..8
  parameter integer MAN = 23,  // mantissa bits, 1..23
  parameter integer EW  = `FP_EXP_W  // width of the signed exponent output, 8..16
) (
  input  wire [EXP+MAN:0]      bits_i,
  output wire                  sign_o,
  output wire signed [EW-1:0]  lsb_exp_o,
  output wire [MAN:0]          sig_o,
  output wire                  is_nan_o,
  output wire                  is_inf_o
);
  generate
    `ABFP_CHECK_RANGE(fp_unpack, EXP, 2, 8)
    `ABFP_CHECK_RANGE(fp_unpack, MAN, 1, 23)
    `ABFP_CHECK_RANGE(fp_unpack, EW, 8, 16)
  endgenerate

  // Bias and mantissa width as EW-bit constants, so the exponent arithmetic stays in EW bits.
  localparam integer BIAS_PLUS_MAN_INT = (1 << (EXP - 1)) - 1 + MAN;
  localparam [EW-1:0] BIAS_PLUS_MAN = BIAS_PLUS_MAN_INT[EW-1:0];

  wire [EXP-1:0] exp_field = bits_i[MAN +: EXP];
  wire [MAN-1:0] man_field = bits_i[MAN-1:0];
  wire           exp_zero  = (exp_field == {EXP{1'b0}});
  wire           exp_ones  = (exp_field == {EXP{1'b1}});
  // Subnormals and zeros use exponent field 1 with a zero hidden bit.
  wire [EXP-1:0] exp_eff   = exp_zero ? {{(EXP-1){1'b0}}, 1'b1} : exp_field;

  assign sign_o    = bits_i[EXP+MAN];
  assign sig_o     = {~exp_zero, man_field};
  assign lsb_exp_o = $signed({{(EW-EXP){1'b0}}, exp_eff}) - $signed(BIAS_PLUS_MAN);
  assign is_nan_o  = exp_ones & (man_field != {MAN{1'b0}});
  assign is_inf_o  = exp_ones & (man_field == {MAN{1'b0}});
endmodule

// IEEE-754 multiply of an (A_EXP, A_MAN) operand by a (B_EXP, B_MAN) operand, the exact
// product rounded once to (O_EXP, O_MAN) with round-to-nearest-even, gradual underflow and
// overflow to infinity. NaN operands and 0 * inf give the canonical NaN; a zero or infinite
// result has the xor of the operand signs. Purely combinational.
`include "abfp_param_check.vh"
`include "fp_exp_width.vh"

module fp_mul #(
  parameter integer A_EXP = 8,   // exponent bits of operand a, 2..8
  parameter integer A_MAN = 23,  // mantissa bits of operand a, 1..23
  parameter integer B_EXP = 8,   // exponent bits of operand b, 2..8
  parameter integer B_MAN = 23,  // mantissa bits of operand b, 1..23
  parameter integer O_EXP = 8,   // exponent bits of the product, 2..8
  parameter integer O_MAN = 23   // mantissa bits of the product, 1..23
) (
  input  wire [A_EXP+A_MAN:0] a_i,
  input  wire [B_EXP+B_MAN:0] b_i,
  output wire [O_EXP+O_MAN:0] prod_o
);
  generate
    `ABFP_CHECK_RANGE(fp_mul, A_EXP, 2, 8)
    `ABFP_CHECK_RANGE(fp_mul, A_MAN, 1, 23)
    `ABFP_CHECK_RANGE(fp_mul, B_EXP, 2, 8)
    `ABFP_CHECK_RANGE(fp_mul, B_MAN, 1, 23)
    `ABFP_CHECK_RANGE(fp_mul, O_EXP, 2, 8)
    `ABFP_CHECK_RANGE(fp_mul, O_MAN, 1, 23)
  endgenerate

  localparam integer EW = `FP_EXP_W;
  localparam integer PW = A_MAN + B_MAN + 2;  // width of the exact significand product

  wire                 a_sign, b_sign, a_nan, b_nan, a_inf, b_inf;
  wire signed [EW-1:0] a_lsb_exp, b_lsb_exp;
  wire [A_MAN:0]       a_sig;
  wire [B_MAN:0]       b_sig;

  fp_unpack #(.EXP(A_EXP), .MAN(A_MAN), .EW(EW)) u_unpack_a (
    .bits_i(a_i), .sign_o(a_sign), .lsb_exp_o(a_lsb_exp), .sig_o(a_sig),
    .is_nan_o(a_nan), .is_inf_o(a_inf)
  );
  fp_unpack #(.EXP(B_EXP), .MAN(B_MAN), .EW(EW)) u_unpack_b (
    .bits_i(b_i), .sign_o(b_sign), .lsb_exp_o(b_lsb_exp), .sig_o(b_sig),
    .is_nan_o(b_nan), .is_inf_o(b_inf)
  );

  wire a_zero = (a_sig == {(A_MAN+1){1'b0}});
  wire b_zero = (b_sig == {(B_MAN+1){1'b0}});
  wire [PW-1:0] sig_prod = {{(B_MAN+1){1'b0}}, a_sig} * {{(A_MAN+1){1'b0}}, b_sig};
  wire nan_prod = a_nan | b_nan | (a_inf & b_zero) | (b_inf & a_zero);
  wire inf_prod = a_inf | b_inf;

  fp_round_pack #(.SIG_W(PW), .EW(EW), .EXP(O_EXP), .MAN(O_MAN)) u_round (
    .sign_i(a_sign ^ b_sign), .lsb_exp_i(a_lsb_exp + b_lsb_exp), .sig_i(sig_prod),
    .nan_i(nan_prod), .inf_i(inf_prod), .bits_o(prod_o)
  );
endmodule

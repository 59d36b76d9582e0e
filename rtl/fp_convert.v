// Convert a value from format (IN_EXP, IN_MAN) to format (OUT_EXP, OUT_MAN): exact when the
// output format holds every input value (e.g. bf16 -> fp32), otherwise rounded once with
// round-to-nearest-even, gradual underflow and overflow to infinity. Every NaN becomes the
// canonical NaN; zeros and infinities keep their sign. Purely combinational.
`include "abfp_param_check.vh"
`include "fp_exp_width.vh"

module fp_convert #(
  parameter integer IN_EXP  = 8,   // input exponent bits, 2..8
  parameter integer IN_MAN  = 23,  // input mantissa bits, 1..23
  parameter integer OUT_EXP = 8,   // output exponent bits, 2..8
  parameter integer OUT_MAN = 7    // output mantissa bits, 1..23
) (
  input  wire [IN_EXP+IN_MAN:0]   a_i,
  output wire [OUT_EXP+OUT_MAN:0] y_o
);
  generate
    `ABFP_CHECK_RANGE(fp_convert, IN_EXP, 2, 8)
    `ABFP_CHECK_RANGE(fp_convert, IN_MAN, 1, 23)
    `ABFP_CHECK_RANGE(fp_convert, OUT_EXP, 2, 8)
    `ABFP_CHECK_RANGE(fp_convert, OUT_MAN, 1, 23)
  endgenerate

  localparam integer EW = `FP_EXP_W;

  wire                 sign, is_nan, is_inf;
  wire signed [EW-1:0] lsb_exp;
  wire [IN_MAN:0]      sig;

  fp_unpack #(.EXP(IN_EXP), .MAN(IN_MAN), .EW(EW)) u_unpack (
    .bits_i(a_i), .sign_o(sign), .lsb_exp_o(lsb_exp), .sig_o(sig),
    .is_nan_o(is_nan), .is_inf_o(is_inf)
  );
  fp_round_pack #(.SIG_W(IN_MAN + 1), .EW(EW), .EXP(OUT_EXP), .MAN(OUT_MAN)) u_round (
    .sign_i(sign), .lsb_exp_i(lsb_exp), .sig_i(sig), .nan_i(is_nan), .inf_i(is_inf),
    .bits_o(y_o)
  );
endmodule

// Convert a W-bit two's-complement integer to format (EXP, MAN), rounded once with
// round-to-nearest-even and overflow to infinity; zero converts to +0. Purely combinational.
`include "abfp_param_check.vh"
`include "fp_exp_width.vh"

module fp_int_to_float #(
  parameter integer W   = 8,   // integer width, 2..32
  parameter integer EXP = 8,   // output exponent bits, 2..8
  parameter integer MAN = 23   // output mantissa bits, 1..23
) (
  input  wire [W-1:0]       int_i,
  output wire [EXP+MAN:0]   y_o
);
  generate
    `ABFP_CHECK_RANGE(fp_int_to_float, W, 2, 32)
    `ABFP_CHECK_RANGE(fp_int_to_float, EXP, 2, 8)
    `ABFP_CHECK_RANGE(fp_int_to_float, MAN, 1, 23)
  endgenerate

  localparam integer EW = `FP_EXP_W;

  wire         sign      = int_i[W-1];
  // Two's-complement negation is exact in W bits read as unsigned, -2^(W-1) included.
  wire [W-1:0] magnitude = sign ? (~int_i + 1'b1) : int_i;

  fp_round_pack #(.SIG_W(W), .EW(EW), .EXP(EXP), .MAN(MAN)) u_round (
    .sign_i(sign), .lsb_exp_i({EW{1'b0}}), .sig_i(magnitude), .nan_i(1'b0), .inf_i(1'b0),
    .bits_o(y_o)
  );
endmodule

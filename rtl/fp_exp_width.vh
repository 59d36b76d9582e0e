// Signed width of the exponent arithmetic in the floating-point blocks and the input unit's
// quantizer. With exponent fields of at most 8 bits, mantissas of at most 23 bits and
// significands of at most 64 bits, every exponent they form (a product's exponent included)
// lies within +-700, which 12 bits hold.
`ifndef FP_EXP_WIDTH_VH
`define FP_EXP_WIDTH_VH

`define FP_EXP_W 12

`endif

// Largest magnitude among the P elements of one beat, and whether any of them is non-finite.
//
// For finite IEEE-like values, comparing the magnitude bit patterns (exponent, mantissa) as
// unsigned integers orders them by absolute value, subnormals and zero included. The tree is a
// binary heap: leaves at nodes P..2P-1, node i holds the larger of nodes 2i and 2i+1, so the
// depth is ceil(log2 P) for any P. Purely combinational.
`include "abfp_param_check.vh"

module abfp_in_max_abs #(
  parameter integer P       = 16,  // elements per beat, 1..1024
  parameter integer IN_EXP  = 8,   // exponent bits of the element format, 2..8
  parameter integer IN_MAN  = 7    // mantissa bits of the element format, 1..23
) (
  // Element k's magnitude (exponent, mantissa; no sign) at [k*(IN_EXP+IN_MAN) +: IN_EXP+IN_MAN].
  input  wire [P*(IN_EXP+IN_MAN)-1:0] mag_i,
  output wire [IN_EXP+IN_MAN-1:0]     max_mag_o,   // largest magnitude (unsigned compare)
  output reg                          nonfinite_o  // some element has an all-ones exponent
);

  localparam integer MAG_W = IN_EXP + IN_MAN;

  generate
    `ABFP_CHECK_RANGE(abfp_in_max_abs, P, 1, 1024)
    `ABFP_CHECK_RANGE(abfp_in_max_abs, IN_EXP, 2, 8)
    `ABFP_CHECK_RANGE(abfp_in_max_abs, IN_MAN, 1, 23)
  endgenerate

  // Heap nodes 1..2P-1 flattened; node i at [(i-1)*MAG_W +: MAG_W].
  reg [(2*P-1)*MAG_W-1:0] node;
  reg [MAG_W-1:0]     left;
  reg [MAG_W-1:0]     right;
  integer             i;

  always @* begin
    node        = {((2*P-1)*MAG_W){1'b0}};
    left        = {MAG_W{1'b0}};
    right       = {MAG_W{1'b0}};
    nonfinite_o = 1'b0;
    for (i = 0; i < P; i = i + 1) begin
      node[(P+i-1)*MAG_W +: MAG_W] = mag_i[i*MAG_W +: MAG_W];
      nonfinite_o = nonfinite_o | (&mag_i[i*MAG_W+IN_MAN +: IN_EXP]);
    end
    for (i = P - 1; i >= 1; i = i - 1) begin
      left  = node[(2*i-1)*MAG_W +: MAG_W];
      right = node[(2*i)*MAG_W +: MAG_W];
      node[(i-1)*MAG_W +: MAG_W] = (left >= right) ? left : right;
    end
  end

  assign max_mag_o = node[0 +: MAG_W];

endmodule

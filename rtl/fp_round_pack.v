// Round an exact value (-1)^sign_i * sig_i * 2^lsb_exp_i to the format (EXP, MAN) with IEEE
// round-to-nearest-even, gradual underflow and overflow to infinity. sig_i may have leading
// zeros; sig_i == 0 gives a zero with sign sign_i. nan_i gives the canonical NaN (sign 0,
// exponent all ones, only the top mantissa bit set); inf_i gives an infinity with sign sign_i.
// Purely combinational.
`include "abfp_param_check.vh"
`include "fp_exp_width.vh"

module fp_round_pack #(
  parameter integer SIG_W = 24,  // significand width, 1..64
  parameter integer EW    = `FP_EXP_W,  // signed exponent width, 8..16; holds every exponent seen
  parameter integer EXP   = 8,   // output exponent bits, 2..8
  parameter integer MAN   = 23   // output mantissa bits, 1..23
) (
  input  wire                 sign_i,
  input  wire signed [EW-1:0] lsb_exp_i,
  input  wire [SIG_W-1:0]     sig_i,
  input  wire                 nan_i,
  input  wire                 inf_i,
  output reg  [EXP+MAN:0]     bits_o
);
  generate
    `ABFP_CHECK_RANGE(fp_round_pack, SIG_W, 1, 64)
    `ABFP_CHECK_RANGE(fp_round_pack, EW, 8, 16)
    `ABFP_CHECK_RANGE(fp_round_pack, EXP, 2, 8)
    `ABFP_CHECK_RANGE(fp_round_pack, MAN, 1, 23)
  endgenerate

  localparam integer CW = $clog2(SIG_W + 1);  // width of a leading-zero count 0..SIG_W
  // Right shift that denormalizes a tiny value; MAN + 2 already moves every bit below the
  // rounding position, so larger shifts are clamped to it.
  localparam integer MAX_SHIFT = MAN + 2;
  localparam integer SW = $clog2(MAX_SHIFT + 1);
  localparam integer XW = SIG_W + MAN + 2;  // normalized significand plus room to denormalize
  localparam integer TOP_PLUS_BIAS_INT = SIG_W - 1 + (1 << (EXP - 1)) - 1;
  localparam [EW-1:0] TOP_PLUS_BIAS = TOP_PLUS_BIAS_INT[EW-1:0];
  localparam [EW-1:0] EXP_ONES = (1 << EXP) - 1;
  localparam [EW-1:0] ONE = 1;
  localparam [EW-1:0] SHIFT_CAP = MAX_SHIFT[EW-1:0];
  localparam [EXP+MAN:0] CANONICAL_NAN = (((1 << EXP) - 1) << MAN) | (1 << (MAN - 1));

  reg [CW-1:0]        lead_zeros;
  reg [SIG_W-1:0]     norm_sig;
  reg signed [EW-1:0] biased_exp;   // biased exponent of the leading one
  reg signed [EW-1:0] under_by;     // 1 - biased_exp: how far below the normal range
  reg [SW-1:0]        shift;
  reg [XW-1:0]        shifted;
  reg [MAN:0]         kept;         // hidden bit and mantissa before rounding
  reg                 round_bit;
  reg                 sticky;
  reg [EXP-1:0]       exp_base;
  reg [EXP+MAN-1:0]   magnitude;
  integer             i;

  always @* begin
    lead_zeros = SIG_W[CW-1:0];
    for (i = 0; i < SIG_W; i = i + 1) begin
      if (sig_i[i]) begin
        lead_zeros = SIG_W[CW-1:0] - 1'b1 - i[CW-1:0];
      end
    end
    norm_sig   = sig_i << lead_zeros;
    biased_exp = lsb_exp_i + $signed(TOP_PLUS_BIAS) - $signed({{(EW-CW){1'b0}}, lead_zeros});
    under_by   = $signed(ONE) - biased_exp;
    if (biased_exp >= $signed(ONE)) begin
      shift = {SW{1'b0}};
    end else if (under_by >= $signed(SHIFT_CAP)) begin
      shift = MAX_SHIFT[SW-1:0];
    end else begin
      shift = under_by[SW-1:0];
    end
    shifted   = {norm_sig, {(MAN + 2){1'b0}}} >> shift;
    kept      = shifted[XW-1 -: MAN + 1];
    round_bit = shifted[XW-MAN-2];
    sticky    = |shifted[XW-MAN-3:0];
    // The hidden bit of `kept` adds one to the exponent field, so normals start from
    // biased_exp - 1 and subnormals (hidden bit 0) from 0; a rounding carry walks into the
    // exponent and, from the largest finite value, reaches the infinity encoding.
    exp_base  = (biased_exp >= $signed(ONE)) ? biased_exp[EXP-1:0] - 1'b1 : {EXP{1'b0}};
    magnitude = {exp_base, {MAN{1'b0}}} + {{(EXP-1){1'b0}}, kept};
    magnitude = magnitude + {{(EXP+MAN-1){1'b0}}, round_bit & (sticky | kept[0])};

    if (nan_i) begin
      bits_o = CANONICAL_NAN;
    end else if (inf_i || (sig_i != {SIG_W{1'b0}} && biased_exp >= $signed(EXP_ONES))) begin
      bits_o = {sign_i, {EXP{1'b1}}, {MAN{1'b0}}};
    end else if (sig_i == {SIG_W{1'b0}}) begin
      bits_o = {sign_i, {(EXP+MAN){1'b0}}};
    end else begin
      bits_o = {sign_i, magnitude};
    end
  end
endmodule

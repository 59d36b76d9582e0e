// Rounds a finite non-negative value of the input format to the scale format:
// sx = to(scale_fmt, max|x|), IEEE round-to-nearest-even, subnormals kept, overflow to +inf.
//
// The value is normalised (leading one of a subnormal input moved to the hidden position),
// shifted right into the scale format's subnormal range when its exponent is below the
// format's minimum, and rounded by adding the round-up bit to the packed {exponent, mantissa}
// field: a mantissa carry then moves into the exponent, which turns the largest subnormal into
// the smallest normal and the largest finite value into infinity as IEEE requires.
// Purely combinational. The caller handles non-finite inputs.
module abfp_in_round_scale #(
  parameter integer IN_EXP    = 8,  // exponent bits of the input format, 2..8
  parameter integer IN_MAN    = 7,  // mantissa bits of the input format, 1..23
  parameter integer SCALE_EXP = 8,  // exponent bits of the scale format, 2..8
  parameter integer SCALE_MAN = 7   // mantissa bits of the scale format, 1..23
) (
  input  wire [IN_EXP+IN_MAN-1:0]      mag_i,   // magnitude bits {exponent, mantissa}, finite
  output reg  [SCALE_EXP+SCALE_MAN:0]  scale_o  // scale format bits, sign 0
);

  generate
    if (IN_EXP < 2 || IN_EXP > 8) begin : g_bad_in_exp
      abfp_param_error_IN_EXP_out_of_range u_bad ();
    end
    if (IN_MAN < 1 || IN_MAN > 23) begin : g_bad_in_man
      abfp_param_error_IN_MAN_out_of_range u_bad ();
    end
    if (SCALE_EXP < 2 || SCALE_EXP > 8) begin : g_bad_scale_exp
      abfp_param_error_SCALE_EXP_out_of_range u_bad ();
    end
    if (SCALE_MAN < 1 || SCALE_MAN > 23) begin : g_bad_scale_man
      abfp_param_error_SCALE_MAN_out_of_range u_bad ();
    end
  endgenerate

  localparam integer IN_BIAS   = (1 << (IN_EXP - 1)) - 1;
  localparam integer SC_BIAS   = (1 << (SCALE_EXP - 1)) - 1;
  localparam integer SC_EXP_MAX = (1 << SCALE_EXP) - 1;  // all-ones exponent field: inf
  // Significand {hidden, mantissa} followed by SCALE_MAN + 2 zero bits, so that the kept
  // bits, the guard bit and the sticky bits all exist whatever the two mantissa widths.
  localparam integer EXT_W     = IN_MAN + SCALE_MAN + 3;
  // Right shifts beyond SCALE_MAN + 2 leave the value below half the smallest subnormal,
  // which rounds to zero exactly as the clamped shift does.
  localparam integer SHIFT_MAX = SCALE_MAN + 2;
  localparam integer SH_W      = $clog2(SHIFT_MAX + 1);
  // Signed width holding every biased exponent arithmetic here (|values| < 2^10).
  localparam integer E_W       = 12;

  wire [IN_EXP-1:0] exp_field = mag_i[IN_MAN +: IN_EXP];
  wire [IN_MAN-1:0] man_field = mag_i[0 +: IN_MAN];
  wire [IN_MAN:0]   sig       = {exp_field != {IN_EXP{1'b0}}, man_field};

  reg  [IN_MAN:0]                 norm;        // significand with its leading one at IN_MAN
  reg  [E_W-1:0]                  lead_zeros;  // leading zeros of sig within IN_MAN+1 bits
  reg  signed [E_W-1:0]           exp_biased;  // exponent of norm biased for the scale format
  reg  signed [E_W-1:0]           shift_full;
  reg  [SH_W-1:0]                 shift;
  reg  [EXT_W-1:0]                ext;
  reg  [EXT_W-1:0]                shifted;
  reg  [EXT_W-1:0]                lost_mask;
  reg                             guard;
  reg                             sticky;
  reg  [SCALE_EXP-1:0]            exp_out;
  reg  [SCALE_EXP+SCALE_MAN-1:0]  packed_mag;
  reg                             found;
  integer                         i;

  always @* begin
    lead_zeros = {E_W{1'b0}};
    found      = 1'b0;
    for (i = IN_MAN; i >= 0; i = i - 1) begin
      if (!found && sig[i]) begin
        found      = 1'b1;
        lead_zeros = IN_MAN[E_W-1:0] - i[E_W-1:0];
      end
    end
    norm = sig << lead_zeros;

    // Unbiased exponent of norm is max(exp_field, 1) - IN_BIAS - lead_zeros.
    exp_biased = $signed({{(E_W-IN_EXP){1'b0}}, exp_field})
               + $signed({{(E_W-1){1'b0}}, exp_field == {IN_EXP{1'b0}}})
               - $signed(IN_BIAS[E_W-1:0]) - $signed(lead_zeros) + $signed(SC_BIAS[E_W-1:0]);

    shift_full = (exp_biased >= $signed({{(E_W-1){1'b0}}, 1'b1}))
               ? {E_W{1'b0}} : $signed({{(E_W-1){1'b0}}, 1'b1}) - exp_biased;
    shift      = (shift_full > $signed(SHIFT_MAX[E_W-1:0]))
               ? SHIFT_MAX[SH_W-1:0] : shift_full[SH_W-1:0];

    ext        = {norm, {(SCALE_MAN + 2){1'b0}}};
    shifted    = ext >> shift;
    lost_mask  = ~({EXT_W{1'b1}} << shift);
    guard      = shifted[IN_MAN + 1];
    sticky     = (|shifted[IN_MAN:0]) | (|(ext & lost_mask));

    exp_out    = (shift == {SH_W{1'b0}}) ? exp_biased[SCALE_EXP-1:0] : {SCALE_EXP{1'b0}};
    packed_mag = {exp_out, shifted[IN_MAN + 2 +: SCALE_MAN]}
               + {{(SCALE_EXP + SCALE_MAN - 1){1'b0}},
                  guard & (sticky | shifted[IN_MAN + 2])};

    if (!found) begin
      scale_o = {(1 + SCALE_EXP + SCALE_MAN){1'b0}};
    end else if (exp_biased >= $signed(SC_EXP_MAX[E_W-1:0])) begin
      scale_o = {1'b0, {SCALE_EXP{1'b1}}, {SCALE_MAN{1'b0}}};
    end else begin
      scale_o = {1'b0, packed_mag};
    end
  end

endmodule

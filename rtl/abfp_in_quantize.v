// One DAC code: code = clamp(rne(x * M / s), M) with M = 2^(DAC_BITS-1) - 1, computed exactly.
//
// With x = mx * 2^ex and s = ms * 2^es (integer significands, exponents of their last bits),
// the doubled quotient 2 x M / s = (mx * M * 2^(ex - es + 1)) / ms. The dividend is formed
// exactly by a shift (bits shifted out feed the sticky bit), and a restoring divider yields
// DAC_BITS + 1 quotient bits: the integer part of x M / s and its half bit. The remainder and
// the shifted-out bits give the sticky bit, so ties go to even exactly as the real quotient
// demands. Quotients of 2^DAC_BITS or more saturate (they exceed M + 1/2 in any case).
// A zero, infinite or NaN scale gives code 0 (x * M / inf = 0; NaN marks a rejected vector).
// Purely combinational; the code is two's complement, and -0 gives 0.
`include "abfp_param_check.vh"
`include "fp_exp_width.vh"

module abfp_in_quantize #(
  parameter integer DAC_BITS  = 8,  // DAC code width bx (signed, symmetric), 2..16
  parameter integer IN_EXP    = 8,  // exponent bits of the element format, 2..8
  parameter integer IN_MAN    = 7,  // mantissa bits of the element format, 1..23
  parameter integer SCALE_EXP = 8,  // exponent bits of the scale format, 2..8
  parameter integer SCALE_MAN = 7   // mantissa bits of the scale format, 1..23
) (
  input  wire [IN_EXP+IN_MAN:0]        x_i,          // element bits {sign, exponent, mantissa}
  input  wire [SCALE_EXP+SCALE_MAN-1:0] scale_mag_i, // scale magnitude {exponent, mantissa}
  output reg  [DAC_BITS-1:0]           code_o
);

  generate
    `ABFP_CHECK_RANGE(abfp_in_quantize, DAC_BITS, 2, 16)
    `ABFP_CHECK_RANGE(abfp_in_quantize, IN_EXP, 2, 8)
    `ABFP_CHECK_RANGE(abfp_in_quantize, IN_MAN, 1, 23)
    `ABFP_CHECK_RANGE(abfp_in_quantize, SCALE_EXP, 2, 8)
    `ABFP_CHECK_RANGE(abfp_in_quantize, SCALE_MAN, 1, 23)
  endgenerate

  localparam integer CODE_MAX = (1 << (DAC_BITS - 1)) - 1;  // M
  localparam integer IN_BIAS  = (1 << (IN_EXP - 1)) - 1;
  localparam integer SC_BIAS  = (1 << (SCALE_EXP - 1)) - 1;
  localparam integer NUM_W    = IN_MAN + DAC_BITS;          // width of mx * M
  // The dividend num * 2^(ex - es + 1) is num shifted left by at most SCALE_MAN + 2 before its
  // quotient by ms (>= 1) must exceed 2^(DAC_BITS+1); WIDE holds num * 2^(SCALE_MAN + 2) and
  // is shifted right by RS = SCALE_MAN + 2 - (ex - es + 1).
  localparam integer LSH_MAX  = SCALE_MAN + 2;
  localparam integer WIDE_W   = NUM_W + LSH_MAX;
  localparam integer RS_W     = $clog2(WIDE_W + 1);
  localparam integer DIV_W    = SCALE_MAN + DAC_BITS + 2;   // dividend bits the divider takes
  localparam integer Q_W      = DAC_BITS + 1;               // quotient bits: integer and half
  // RS = max(es_field,1) - max(ex_field,1) + RS_BASE, from ex = max(ex_field,1) - IN_BIAS -
  // IN_MAN and es = max(es_field,1) - SC_BIAS - SCALE_MAN.
  localparam integer RS_BASE  = IN_BIAS - SC_BIAS + IN_MAN + 1;
  localparam integer E_W      = `FP_EXP_W;  // signed width of the exponent arithmetic

  wire                 x_sign  = x_i[IN_EXP + IN_MAN];
  wire [IN_EXP-1:0]    x_exp   = x_i[IN_MAN +: IN_EXP];
  wire [IN_MAN:0]      x_sig   = {x_exp != {IN_EXP{1'b0}}, x_i[0 +: IN_MAN]};
  wire [SCALE_EXP-1:0] s_exp   = scale_mag_i[SCALE_MAN +: SCALE_EXP];
  wire [SCALE_MAN:0]   s_sig   = {s_exp != {SCALE_EXP{1'b0}}, scale_mag_i[0 +: SCALE_MAN]};
  wire                 s_zero  = (scale_mag_i == {(SCALE_EXP + SCALE_MAN){1'b0}});
  wire                 s_nonfinite = &s_exp;

  wire [NUM_W-1:0]     num     = x_sig * CODE_MAX[DAC_BITS-1:0];

  reg  signed [E_W-1:0] rs_full;
  reg  [RS_W-1:0]       rs;
  reg  [WIDE_W-1:0]     wide;
  reg  [WIDE_W-1:0]     shifted;
  reg                   lost;       // nonzero bits shifted out of the dividend
  reg                   too_big;    // quotient >= 2^DAC_BITS
  reg  [DIV_W-1:0]      dividend;
  reg  [SCALE_MAN:0]    rem;
  reg  [SCALE_MAN+1:0]  trial;
  reg  [Q_W-1:0]        quot;       // floor(2 x M / s)
  reg  [DAC_BITS:0]     mag;        // rne(x M / s) before the clamp
  reg  [DAC_BITS-1:0]   mag_clamped;
  integer               i;

  always @* begin
    rs_full = $signed({{(E_W-SCALE_EXP){1'b0}}, s_exp})
            + $signed({{(E_W-1){1'b0}}, s_exp == {SCALE_EXP{1'b0}}})
            - $signed({{(E_W-IN_EXP){1'b0}}, x_exp})
            - $signed({{(E_W-1){1'b0}}, x_exp == {IN_EXP{1'b0}}})
            + $signed(RS_BASE[E_W-1:0]);
    if (rs_full < $signed({E_W{1'b0}})) begin
      rs = {RS_W{1'b0}};
    end else if (rs_full > $signed(WIDE_W[E_W-1:0])) begin
      rs = WIDE_W[RS_W-1:0];
    end else begin
      rs = rs_full[RS_W-1:0];
    end

    wide     = {num, {LSH_MAX{1'b0}}};
    shifted  = wide >> rs;
    lost     = |(wide & ~({WIDE_W{1'b1}} << rs));
    dividend = shifted[DIV_W-1:0];
    rem      = dividend[DIV_W-1 : Q_W];
    too_big  = (rs_full < $signed({E_W{1'b0}}) && num != {NUM_W{1'b0}})
             || (|shifted[WIDE_W-1:DIV_W]) || (rem >= s_sig);

    quot  = {Q_W{1'b0}};
    trial = {(SCALE_MAN + 2){1'b0}};
    for (i = Q_W - 1; i >= 0; i = i - 1) begin
      trial = {rem, dividend[i]};
      if (trial >= {1'b0, s_sig}) begin
        quot[i] = 1'b1;
        trial   = trial - {1'b0, s_sig};
      end
      rem = trial[SCALE_MAN:0];
    end

    // Round half to even on the integer part quot[Q_W-1:1], half bit quot[0].
    mag = {1'b0, quot[Q_W-1:1]}
        + {{DAC_BITS{1'b0}}, quot[0] & ((rem != {(SCALE_MAN + 1){1'b0}}) | lost | quot[1])};
    mag_clamped = (too_big || mag > CODE_MAX[DAC_BITS:0])
                ? CODE_MAX[DAC_BITS-1:0] : mag[DAC_BITS-1:0];

    if (s_zero || s_nonfinite) begin
      code_o = {DAC_BITS{1'b0}};
    end else if (x_sign) begin
      code_o = -mag_clamped;
    end else begin
      code_o = mag_clamped;
    end
  end

endmodule

// ABFP input unit: block scale and DAC quantizer for one n-element activation vector
// (docs/arithmetic.md steps 2-3 for x).
//
//   sx    = to(scale_fmt, max_k |x_k|)            IEEE RNE, subnormals kept, overflow to +inf
//   qx[k] = clamp(rne(x_k * M / sx), M)           M = 2^(DAC_BITS-1) - 1, exact quotient
//
// A zero or infinite sx gives zero codes. A vector holding an inf or NaN gives
// sx = canonical NaN of the scale format and zero codes, and sets the sticky nonfinite_o.
//
// Input: N/P beats of P elements per vector over valid/ready. The unit counts the beats
// itself: beat b of a vector carries elements b*P .. b*P+P-1, element b*P+j at
// in_data_i[j*IN_W +: IN_W]; the N/P-th accepted beat closes the vector.
// Output: one beat per vector over valid/ready with sx and all N codes (element k's code,
// two's complement, at out_codes_o[k*DAC_BITS +: DAC_BITS]), because the analog array applies
// the whole vector's codes to its DACs at once.
//
// Pipeline: beats are stored in a vector buffer while a running max-abs is kept; the beat that
// closes the vector also rounds the final max-abs to sx. The quantizer then reads the buffer
// one beat (P elements, P exact divider lanes) per clock for N/P clocks and writes the codes
// into the output register, which it starts only once the previous vector has left it; its
// last beat raises out_valid_o. Beat b of the next vector may overwrite buffer slot b in the
// same clock as the quantizer reads it, so a new vector is accepted every N/P clocks.
// Latency: out_valid_o rises N/P + 1 clocks after the clock in which the closing beat is
// accepted, unless the previous vector still waits in the output register. in_ready_o
// depends on out_ready_i (never on in_valid_i) when the first beat of the next vector meets
// the quantizer's first beat.
`include "abfp_param_check.vh"

module abfp_input_unit #(
  parameter integer N         = 128,  // tile width n: elements per vector, 1..1024
  parameter integer P         = 16,   // elements per input beat, 1..N, divides N
  parameter integer DAC_BITS  = 8,    // DAC code width bx (signed, symmetric), 2..16
  parameter integer IN_EXP    = 8,    // exponent bits of the input format, 2..8
  parameter integer IN_MAN    = 7,    // mantissa bits of the input format, 1..23
  parameter integer SCALE_EXP = 8,    // exponent bits of the scale format, 2..8
  parameter integer SCALE_MAN = 7     // mantissa bits of the scale format, 1..23
) (
  input  wire                              clk_i,
  input  wire                              rst_ni,
  // input beats
  input  wire                              in_valid_i,
  output reg                               in_ready_o,
  input  wire [P*(1+IN_EXP+IN_MAN)-1:0]    in_data_i,
  // one output beat per vector
  output wire                              out_valid_o,
  input  wire                              out_ready_i,
  output wire [SCALE_EXP+SCALE_MAN:0]      out_scale_o,
  output wire [N*DAC_BITS-1:0]             out_codes_o,
  // sticky: some accepted element was inf or NaN since reset
  output wire                              nonfinite_o
);

  // P as a divisor: equal to P whenever P is legal, and 1 otherwise, so that an illegal P is
  // reported by its check rather than by a division by zero.
  localparam integer P_DIV = (P > 0) ? P : 1;

  generate
    `ABFP_CHECK_RANGE(abfp_input_unit, N, 1, 1024)
    `ABFP_CHECK_RANGE(abfp_input_unit, P, 1, N)
    `ABFP_CHECK_RULE(abfp_input_unit, P_must_divide_N, (N % P_DIV) == 0)
    `ABFP_CHECK_RANGE(abfp_input_unit, DAC_BITS, 2, 16)
    `ABFP_CHECK_RANGE(abfp_input_unit, IN_EXP, 2, 8)
    `ABFP_CHECK_RANGE(abfp_input_unit, IN_MAN, 1, 23)
    `ABFP_CHECK_RANGE(abfp_input_unit, SCALE_EXP, 2, 8)
    `ABFP_CHECK_RANGE(abfp_input_unit, SCALE_MAN, 1, 23)
  endgenerate

  localparam integer IN_W     = 1 + IN_EXP + IN_MAN;
  localparam integer MAG_W    = IN_EXP + IN_MAN;
  localparam integer SC_W     = 1 + SCALE_EXP + SCALE_MAN;
  localparam integer BEATS    = N / P_DIV;
  localparam integer BEAT_W   = (BEATS > 1) ? $clog2(BEATS) : 1;
  localparam integer BEAT_BITS = P * IN_W;
  localparam integer LANE_BITS = P * DAC_BITS;
  localparam integer LAST_BEAT_INT = BEATS - 1;
  localparam [BEAT_W-1:0] LAST_BEAT = LAST_BEAT_INT[BEAT_W-1:0];
  // The canonical NaN: sign 0, exponent all ones, only the top mantissa bit set.
  localparam [SC_W-1:0] SCALE_NAN = (((1 << SCALE_EXP) - 1) << SCALE_MAN) | (1 << (SCALE_MAN - 1));

  // ---------------------------------------------------------------------------------------
  // Gather: beat counter, vector buffer, running max-abs and non-finite marks.
  reg  [BEAT_W-1:0]    in_beat_d, in_beat_q;
  reg  [N*IN_W-1:0]    vec_d, vec_q;
  reg  [MAG_W-1:0]     run_max_d, run_max_q;
  reg                  run_nonfinite_d, run_nonfinite_q;
  reg                  nonfinite_d, nonfinite_q;

  // Quantizer: walks the buffer one beat per clock.
  reg                  q_active_d, q_active_q;
  reg  [BEAT_W-1:0]    q_beat_d, q_beat_q;
  reg  [SC_W-1:0]      q_scale_d, q_scale_q;

  // Output register.
  reg                  out_valid_d, out_valid_q;
  reg  [SC_W-1:0]      out_scale_d, out_scale_q;
  reg  [N*DAC_BITS-1:0] out_codes_d, out_codes_q;

  reg  [P*MAG_W-1:0]   beat_mag;
  wire [MAG_W-1:0]     beat_max;
  wire                 beat_nonfinite;
  reg  [MAG_W-1:0]     vec_max;
  wire [IN_W-1:0]      vec_max_signed = {1'b0, vec_max};
  reg                  vec_nonfinite;
  wire [SC_W-1:0]      vec_scale_rounded;
  reg  [BEAT_BITS-1:0] q_beat_data;
  wire [LANE_BITS-1:0] lane_codes;
  reg                  in_fire;
  reg                  in_last;
  reg                  q_last;
  reg                  q_advance;
  integer              b;
  integer              j;

  always @* begin
    beat_mag = {(P*MAG_W){1'b0}};
    for (j = 0; j < P; j = j + 1) begin
      beat_mag[j*MAG_W +: MAG_W] = in_data_i[j*IN_W +: MAG_W];
    end
  end

  abfp_in_max_abs #(
    .P      (P),
    .IN_EXP (IN_EXP),
    .IN_MAN (IN_MAN)
  ) u_max_abs (
    .mag_i       (beat_mag),
    .max_mag_o   (beat_max),
    .nonfinite_o (beat_nonfinite)
  );

  always @* begin
    vec_max       = (beat_max > run_max_q) ? beat_max : run_max_q;
    vec_nonfinite = run_nonfinite_q | beat_nonfinite;
  end

  // sx = to(scale_fmt, max|x|); the sign bit is 0 as the max-abs is a magnitude.
  fp_convert #(
    .IN_EXP  (IN_EXP),
    .IN_MAN  (IN_MAN),
    .OUT_EXP (SCALE_EXP),
    .OUT_MAN (SCALE_MAN)
  ) u_round_scale (
    .a_i (vec_max_signed),
    .y_o (vec_scale_rounded)
  );

  // ---------------------------------------------------------------------------------------
  // Quantizer lanes on the buffer beat q_beat_q.
  always @* begin
    q_beat_data = {BEAT_BITS{1'b0}};
    for (b = 0; b < BEATS; b = b + 1) begin
      if (q_beat_q == b[BEAT_W-1:0]) begin
        q_beat_data = vec_q[b*BEAT_BITS +: BEAT_BITS];
      end
    end
  end

  genvar lane;
  generate
    for (lane = 0; lane < P; lane = lane + 1) begin : g_lane
      abfp_in_quantize #(
        .DAC_BITS  (DAC_BITS),
        .IN_EXP    (IN_EXP),
        .IN_MAN    (IN_MAN),
        .SCALE_EXP (SCALE_EXP),
        .SCALE_MAN (SCALE_MAN)
      ) u_quantize (
        .x_i         (q_beat_data[lane*IN_W +: IN_W]),
        .scale_mag_i (q_scale_q[SC_W-2:0]),
        .code_o      (lane_codes[lane*DAC_BITS +: DAC_BITS])
      );
    end
  endgenerate

  // ---------------------------------------------------------------------------------------
  // Handshakes and next state.
  always @* begin
    in_last   = (in_beat_q == LAST_BEAT);
    q_last    = (q_beat_q == LAST_BEAT);
    // The quantizer writes its codes straight into the output register, so it starts a
    // vector only when the previous one leaves the register (or has left it).
    q_advance = q_active_q && ((q_beat_q != {BEAT_W{1'b0}}) || !out_valid_q || out_ready_i);
    // Buffer slot in_beat_q is free once the quantizer is past it or reads it this clock.
    in_ready_o = !q_active_q || (q_beat_q > in_beat_q) || ((q_beat_q == in_beat_q) && q_advance);
    in_fire    = in_valid_i && in_ready_o;

    in_beat_d       = in_beat_q;
    vec_d           = vec_q;
    run_max_d       = run_max_q;
    run_nonfinite_d = run_nonfinite_q;
    nonfinite_d     = nonfinite_q | (in_fire & beat_nonfinite);
    q_active_d      = q_active_q;
    q_beat_d        = q_beat_q;
    q_scale_d       = q_scale_q;
    out_valid_d     = out_valid_q && !out_ready_i;
    out_scale_d     = out_scale_q;
    out_codes_d     = out_codes_q;

    if (q_advance) begin
      for (b = 0; b < BEATS; b = b + 1) begin
        if (q_beat_q == b[BEAT_W-1:0]) begin
          out_codes_d[b*LANE_BITS +: LANE_BITS] = lane_codes;
        end
      end
      if (q_last) begin
        q_active_d  = 1'b0;
        q_beat_d    = {BEAT_W{1'b0}};
        out_valid_d = 1'b1;
        out_scale_d = q_scale_q;
      end else begin
        q_beat_d = q_beat_q + 1'b1;
      end
    end

    if (in_fire) begin
      for (b = 0; b < BEATS; b = b + 1) begin
        if (in_beat_q == b[BEAT_W-1:0]) begin
          vec_d[b*BEAT_BITS +: BEAT_BITS] = in_data_i;
        end
      end
      if (in_last) begin
        in_beat_d       = {BEAT_W{1'b0}};
        run_max_d       = {MAG_W{1'b0}};
        run_nonfinite_d = 1'b0;
        q_active_d      = 1'b1;
        q_beat_d        = {BEAT_W{1'b0}};
        q_scale_d       = vec_nonfinite ? SCALE_NAN : vec_scale_rounded;
      end else begin
        in_beat_d       = in_beat_q + 1'b1;
        run_max_d       = vec_max;
        run_nonfinite_d = vec_nonfinite;
      end
    end
  end

  // Control state and the running max-abs (which the next vector starts from) are reset.
  always @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      in_beat_q       <= {BEAT_W{1'b0}};
      run_max_q       <= {MAG_W{1'b0}};
      run_nonfinite_q <= 1'b0;
      nonfinite_q     <= 1'b0;
      q_active_q      <= 1'b0;
      q_beat_q        <= {BEAT_W{1'b0}};
      out_valid_q     <= 1'b0;
    end else begin
      in_beat_q       <= in_beat_d;
      run_max_q       <= run_max_d;
      run_nonfinite_q <= run_nonfinite_d;
      nonfinite_q     <= nonfinite_d;
      q_active_q      <= q_active_d;
      q_beat_q        <= q_beat_d;
      out_valid_q     <= out_valid_d;
    end
  end

  // Datapath registers are not reset: the buffer and the quantizer's scale are read only while
  // q_active_q is set, and the output register is written whole before out_valid_q rises.
  always @(posedge clk_i) begin
    vec_q       <= vec_d;
    q_scale_q   <= q_scale_d;
    out_scale_q <= out_scale_d;
    out_codes_q <= out_codes_d;
  end

  assign out_valid_o = out_valid_q;
  assign out_scale_o = out_scale_q;
  assign out_codes_o = out_codes_q;
  assign nonfinite_o = nonfinite_q;

endmodule

// Cosimulation top of the end-to-end tile: the RTL input unit and the RTL output unit side by
// side. The analog array between them (docs/arithmetic.md steps 4-7) is the Python golden
// model, which reads the input unit's codes and scales and drives the output unit's ADC codes.
// Test-only: not part of the synthesized design.
module abfp_tile_top #(
  parameter integer N         = 128,  // tile width n
  parameter integer P         = 16,   // input elements per beat
  parameter integer DAC_BITS  = 8,    // bx
  parameter integer IN_EXP    = 8,    // input format
  parameter integer IN_MAN    = 7,
  parameter integer SCALE_EXP = 8,    // scale format
  parameter integer SCALE_MAN = 7,
  parameter integer LANES     = 8,    // output rows per output-unit beat
  parameter integer ADC_BITS  = 8,    // by
  parameter integer PART_EXP  = 8,    // partial format
  parameter integer PART_MAN  = 7,
  parameter integer ACC_EXP   = 8,    // accumulator format
  parameter integer ACC_MAN   = 23,
  parameter integer OUT_EXP   = 8,    // output format
  parameter integer OUT_MAN   = 7
) (
  input  wire                                  clk_i,
  input  wire                                  rst_ni,
  // input unit
  input  wire                                  iu_in_valid_i,
  output wire                                  iu_in_ready_o,
  input  wire [P*(1+IN_EXP+IN_MAN)-1:0]        iu_in_data_i,
  output wire                                  iu_out_valid_o,
  input  wire                                  iu_out_ready_i,
  output wire [SCALE_EXP+SCALE_MAN:0]          iu_out_scale_o,
  output wire [N*DAC_BITS-1:0]                 iu_out_codes_o,
  output wire                                  iu_nonfinite_o,
  // output unit
  input  wire [31:0]                           ou_k_i,
  input  wire                                  ou_in_valid_i,
  output wire                                  ou_in_ready_o,
  input  wire [LANES*ADC_BITS-1:0]             ou_qy_i,
  input  wire [LANES*(1+SCALE_EXP+SCALE_MAN)-1:0] ou_sw_i,
  input  wire [SCALE_EXP+SCALE_MAN:0]          ou_sx_i,
  input  wire                                  ou_first_i,
  input  wire                                  ou_last_i,
  output wire                                  ou_out_valid_o,
  input  wire                                  ou_out_ready_i,
  output wire [LANES*(1+OUT_EXP+OUT_MAN)-1:0]  ou_y_o
);
  abfp_input_unit #(
    .N(N), .P(P), .DAC_BITS(DAC_BITS), .IN_EXP(IN_EXP), .IN_MAN(IN_MAN),
    .SCALE_EXP(SCALE_EXP), .SCALE_MAN(SCALE_MAN)
  ) u_input (
    .clk_i(clk_i), .rst_ni(rst_ni),
    .in_valid_i(iu_in_valid_i), .in_ready_o(iu_in_ready_o), .in_data_i(iu_in_data_i),
    .out_valid_o(iu_out_valid_o), .out_ready_i(iu_out_ready_i),
    .out_scale_o(iu_out_scale_o), .out_codes_o(iu_out_codes_o), .nonfinite_o(iu_nonfinite_o)
  );

  abfp_output_unit #(
    .LANES(LANES), .ADC_BITS(ADC_BITS), .SCALE_EXP(SCALE_EXP), .SCALE_MAN(SCALE_MAN),
    .PART_EXP(PART_EXP), .PART_MAN(PART_MAN), .ACC_EXP(ACC_EXP), .ACC_MAN(ACC_MAN),
    .OUT_EXP(OUT_EXP), .OUT_MAN(OUT_MAN)
  ) u_output (
    .clk_i(clk_i), .rst_ni(rst_ni), .k_i(ou_k_i),
    .in_valid_i(ou_in_valid_i), .in_ready_o(ou_in_ready_o),
    .qy_i(ou_qy_i), .sw_i(ou_sw_i), .sx_i(ou_sx_i), .first_i(ou_first_i), .last_i(ou_last_i),
    .out_valid_o(ou_out_valid_o), .out_ready_i(ou_out_ready_i), .y_o(ou_y_o)
  );
endmodule

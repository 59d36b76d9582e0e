// Source list of abfp_tile (controller with the input and output units), leaves first.
// Paths are relative to this file (Verilator -F); simulator.hdl reads the same list.
fp_unpack.v
fp_round_pack.v
fp_int_to_float.v
fp_mul.v
fp_add.v
fp_convert.v
abfp_in_max_abs.v
abfp_in_quantize.v
abfp_input_unit.v
abfp_output_unit.v
abfp_tile.v

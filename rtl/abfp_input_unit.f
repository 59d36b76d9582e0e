// Source list of abfp_input_unit (block scale and DAC quantizer), leaves first.
// Paths are relative to this file (Verilator -F); simulator.hdl reads the same list.
fp_unpack.v
fp_round_pack.v
fp_convert.v
abfp_in_max_abs.v
abfp_in_quantize.v
abfp_input_unit.v

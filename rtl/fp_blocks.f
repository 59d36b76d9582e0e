// Source list of the floating-point blocks that both units build on, leaves first.
// Paths are relative to this file (Verilator -F); simulator.hdl reads the same list.
fp_unpack.v
fp_round_pack.v
fp_int_to_float.v
fp_mul.v
fp_add.v
fp_convert.v

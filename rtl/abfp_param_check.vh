// Elaboration-time parameter checks: the one convention of every module in rtl/.
//
// Inside a generate region, `ABFP_CHECK_RANGE(MODULE, NAME, LO, HI) requires
// LO <= NAME <= HI; when that fails it instantiates MODULE_parameter_NAME_out_of_range_LO_to_HI,
// a module that does not exist, so elaboration stops with an error whose text is the rule
// (Icarus: "Unknown module type", Verilator: "Cannot find file containing module", Yosys: "is
// not part of the design"). LO and HI are decimal literals or parameter names.
// `ABFP_CHECK_RULE(MODULE, RULE, COND) does the same for a rule that is not a range: RULE is an
// identifier stating it (P_must_divide_N) and COND the condition that must hold.
`ifndef ABFP_PARAM_CHECK_VH
`define ABFP_PARAM_CHECK_VH

`define ABFP_CHECK_RANGE(MODULE, NAME, LO, HI) \
  if ((NAME) < (LO) || (NAME) > (HI)) begin : g_check_``NAME \
    MODULE``_parameter_``NAME``_out_of_range_``LO``_to_``HI u_check (); \
  end

`define ABFP_CHECK_RULE(MODULE, RULE, COND) \
  if (!(COND)) begin : g_check_``RULE \
    MODULE``_parameter_``RULE u_check (); \
  end

`endif

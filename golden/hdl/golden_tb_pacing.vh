// Seeded random stalls of a vector testbench: included in the bench module after its
// stall_seed and stall_pct (+STALL_SEED, +STALL_PCT) are declared.
function stall;  // a seeded random stall with probability stall_pct percent
  input integer unused;
  begin
    stall = ($unsigned($random(stall_seed)) % 100) < stall_pct;
  end
endfunction

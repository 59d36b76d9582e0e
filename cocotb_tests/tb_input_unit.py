"""cocotb tests of ``abfp_input_unit`` against ``simulator.quantize_inputs``.

The bench (``input_bench``) reads its settings from the environment; see there.
"""

from __future__ import annotations

import cocotb
from cocotb.triggers import ClockCycles, ReadOnly
from input_bench import InputUnitBench, txns
from input_model import exact_value


@cocotb.test()
async def unstalled_timing_test(dut):
    """Back-to-back vectors, ready always high: one beat per clock, each output exactly
    N/P + 1 clocks after its closing beat."""
    bench = InputUnitBench(dut, idle_prob=0.0, stall_prob=0.0, seed_offset=0)
    await bench.start()
    vectors = bench.maker.mix(txns())
    await bench.run_stream(vectors, "unstalled")
    accepts = bench.source.accept_cycles
    assert accepts == list(range(accepts[0], accepts[0] + len(accepts))), (
        "input beats were not taken one per clock"
    )
    beats = bench.beats
    want = [accepts[(v + 1) * beats - 1] + beats + 1 for v in range(len(vectors))]
    assert bench.sink.cycles == want, f"output cycles {bench.sink.cycles}, expected {want}"


@cocotb.test()
async def stalled_stream_test(dut):
    """Random and directed vectors with random gaps on valid and backpressure on ready."""
    bench = InputUnitBench(dut, idle_prob=0.3, stall_prob=0.4, seed_offset=1)
    await bench.start()
    await bench.run_stream(bench.maker.mix(txns()), "stalled")


@cocotb.test()
async def directed_test(dut):
    """Every directed case of golden.directed (ties, zeros, extremes, scale overflow,
    underflow and ties...)."""
    bench = InputUnitBench(dut, idle_prob=0.1, stall_prob=0.2, seed_offset=2)
    await bench.start()
    cases = bench.maker.directed_cases()
    vectors = [vec for _, block in cases for vec in block]
    golden = await bench.run_stream(vectors, "directed")
    # The exact-tie vectors did hit exact ties x * M / sx = k + 1/2.
    cfg = bench.cfg
    names = [name for name, block in cases for _ in block]
    tie_vectors = [exp for exp, name in zip(golden, names, strict=True) if name == "exact_ties"]
    assert tie_vectors, f"golden.directed made no exact_ties case for {cfg!r}"
    ties = 0
    for exp in tie_vectors:
        sx = exact_value(exp.scale_bits, cfg.scale_fmt)
        quotients = [exact_value(int(b), cfg.in_fmt) * cfg.mx / sx for b in exp.x_bits]
        ties += sum(q.denominator == 2 for q in quotients)
    assert ties > 0, "the tie vectors hold no exact tie"


@cocotb.test()
async def nonfinite_test(dut):
    """inf/NaN elements: NaN scale and zero codes for that vector, sticky flag, later vectors
    unaffected."""
    bench = InputUnitBench(dut, idle_prob=0.2, stall_prob=0.3, seed_offset=3)
    await bench.start()
    assert int(dut.nonfinite_o.value) == 0
    first = bench.maker.mix(3)
    await bench.run_stream(first, "finite before")
    assert int(dut.nonfinite_o.value) == 0, "nonfinite_o rose without a non-finite input"
    bench.sink.clear()
    directed = [
        vec
        for name, block in bench.maker.directed_cases(nonfinite=True)
        if name == "nonfinite_inputs"
        for vec in block
    ]
    vectors = bench.maker.mix(txns(), nonfinite_prob=0.3) + directed + [bench.maker.nonfinite()]
    await bench.run_stream(vectors, "non-finite")
    assert int(dut.nonfinite_o.value) == 1, "nonfinite_o is not sticky"


@cocotb.test()
async def reset_mid_stream_test(dut):
    """A reset in the middle of a vector: the flag clears and nothing stale comes out."""
    bench = InputUnitBench(dut, idle_prob=0.2, stall_prob=0.3, seed_offset=4)
    await bench.start()
    count = txns(16)
    first = [bench.maker.nonfinite()] + bench.maker.mix(count - 1)
    first_board, _ = bench.scoreboard(first, "before reset")
    first_beats = bench.beats_of(first)
    sender = cocotb.start_soon(bench.source.send(first_beats))
    await ClockCycles(dut.clk_i, len(first_beats) // 2 + bench.beats // 2 + 1)
    sender.cancel()
    await bench.reset()
    await ReadOnly()
    assert int(dut.nonfinite_o.value) == 0, "reset did not clear nonfinite_o"
    before = len(bench.sink.beats)
    assert 0 < before < count, f"the reset should split the stream, saw {before} outputs"
    first_board.expected = first_board.expected[:before]
    bench.check(first_board)
    bench.sink.clear()
    await bench.run_stream(bench.maker.mix(count), "after reset")

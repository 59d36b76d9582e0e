"""cocotb tests of ``abfp_input_unit`` against ``simulator.quantize_inputs``.

Settings from the environment: ``ABFP_TILE_CONFIG`` (JSON keyword arguments of
``TileConfig``), ``ABFP_P`` (elements per beat), ``ABFP_TXNS`` (vectors per test),
``ABFP_SEED`` and ``ABFP_INJECT_MISMATCH`` (1: the model flips one expected code bit, so the
run must fail).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from fractions import Fraction

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly
from models import (
    CLOCK_PERIOD_NS,
    ValidReadySink,
    ValidReadySource,
    current_cycle,
    env_int,
    pack_lanes,
    pulse_reset,
    summarize_report,
    unpack_lanes,
)

from simulator import FloatFormat, TileConfig, quantize_inputs
from simulator.formats import from_bits, round_to, to_bits


def tile_config() -> TileConfig:
    return TileConfig(**json.loads(os.environ.get("ABFP_TILE_CONFIG", "{}")))


def is_nonfinite(bits: np.ndarray, fmt: FloatFormat) -> np.ndarray:
    """Which bit patterns of ``fmt`` are inf or NaN (all-ones exponent)."""
    exp_ones = (1 << fmt.exp_bits) - 1
    return ((np.asarray(bits, np.uint32) >> fmt.man_bits) & exp_ones) == exp_ones


def exact_value(bits: int, fmt: FloatFormat) -> Fraction:
    """The exact value of a finite ``fmt`` bit pattern."""
    return Fraction(float(from_bits(np.array([bits], np.uint32), fmt)[0]))


def bits_text(bits: int, width: int) -> str:
    return f"0x{int(bits):0{(width + 3) // 4}x}"


# ---------------------------------------------------------------------------------------
# Stimulus: vectors of input-format bit patterns


class VectorMaker:
    """Random and directed n-element vectors (uint32 bit patterns of the input format)."""

    KINDS = (
        "random", "wide", "ties", "zeros", "negative_zeros", "huge", "subnormal",
        "scale_overflow", "scale_underflow", "scale_tie",
    )  # fmt: skip

    def __init__(self, cfg: TileConfig, rng: np.random.Generator):
        self.cfg, self.rng = cfg, rng
        self.fmt, self.scale_fmt = cfg.in_fmt, cfg.scale_fmt

    def compose(self, sign, exponent, mantissa) -> np.ndarray:
        f = self.fmt
        return (
            (np.asarray(sign, np.uint32) << (f.exp_bits + f.man_bits))
            | (np.asarray(exponent, np.uint32) << f.man_bits)
            | np.asarray(mantissa, np.uint32)
        )

    def signs(self, count: int) -> np.ndarray:
        return self.rng.integers(0, 2, count)

    def mantissas(self, count: int) -> np.ndarray:
        return self.rng.integers(0, 1 << self.fmt.man_bits, count)

    def bits_of(self, values) -> np.ndarray:
        return to_bits(np.asarray(values, np.float32), self.fmt)

    @staticmethod
    def exact_in(values, fmt: FloatFormat) -> np.ndarray:
        """Which float64 ``values`` are finite values of ``fmt``."""
        values = np.asarray(values, np.float64)
        return np.isfinite(values) & (round_to(values, fmt).astype(np.float64) == values)

    def with_max(self, max_bits: int) -> np.ndarray:
        """A vector of random signs whose max-abs is the magnitude ``max_bits``: one element
        at a random position, the others up to 2^(man_bits+4) patterns below it."""
        n, f = self.cfg.n, self.fmt
        low = max(0, max_bits - (1 << (f.man_bits + 4)))
        mags = self.rng.integers(low, max_bits + 1, n)
        mags[self.rng.integers(0, n)] = max_bits
        return (self.signs(n).astype(np.uint32) << (f.width - 1)) | mags.astype(np.uint32)

    def near(self, target: float) -> list[int]:
        """Finite input-format magnitudes around ``target`` (the rounded one and neighbours)."""
        centre = int(self.bits_of(round_to(np.array([target]), self.fmt))[0])
        limit = ((1 << self.fmt.exp_bits) - 1) << self.fmt.man_bits  # infinity's pattern
        return [b for b in range(centre - 2, centre + 3) if 0 <= b < limit]

    def make(self, kind: str) -> np.ndarray:
        n, f, rng = self.cfg.n, self.fmt, self.rng
        exp_ones = (1 << f.exp_bits) - 1
        if kind == "random":
            top = int(rng.integers(1, exp_ones))
            exps = np.clip(top - rng.integers(0, self.cfg.bx + 3, n), 0, exp_ones - 1)
            vec = self.compose(self.signs(n), exps, self.mantissas(n))
            vec[rng.random(n) < 0.1] = 0
            return vec
        if kind == "wide":
            return self.compose(self.signs(n), rng.integers(0, exp_ones, n), self.mantissas(n))
        if kind == "ties":
            return self.ties()
        if kind == "zeros":
            return self.compose(self.signs(n), np.zeros(n, int), np.zeros(n, int))
        if kind == "negative_zeros":
            vec = self.make("random")
            vec[rng.random(n) < 0.5] = np.uint32(1 << (f.width - 1))
            return vec
        if kind == "huge":
            vec = self.make("random")
            largest = self.compose(rng.integers(0, 2), exp_ones - 1, (1 << f.man_bits) - 1)
            vec[rng.integers(0, n)] = largest
            return vec
        if kind == "subnormal":
            return self.compose(self.signs(n), np.zeros(n, int), self.mantissas(n))
        if kind == "scale_overflow":
            # Midpoint between the scale format's largest finite value and 2^(bias+1): values
            # from there up round to infinity.
            s = self.scale_fmt
            edge = (2.0 - 2.0 ** -(s.man_bits + 1)) * 2.0**s.bias
            return self.with_max(int(rng.choice(self.near(edge))))
        if kind == "scale_underflow":
            s = self.scale_fmt
            factor = rng.choice([0.25, 0.5, 0.75, 1.0, 1.5, 2.5, 2.0**s.man_bits - 0.5])
            tiny = s.min_subnormal
            return self.with_max(int(rng.choice(self.near(tiny * factor))))
        if kind == "scale_tie":
            return self.scale_tie()
        raise ValueError(f"unknown vector kind {kind!r}; known: {self.KINDS}")

    def scale_tie(self) -> np.ndarray:
        """max-abs exactly halfway between two adjacent scale values, when the input format
        has one; otherwise a random vector."""
        s = self.scale_fmt
        exps = self.rng.integers(1, (1 << s.exp_bits) - 1, 50)
        mans = self.rng.integers(0, 1 << s.man_bits, 50)
        mids = np.ldexp(2.0 * ((1 << s.man_bits) + mans) + 1, exps - s.bias - s.man_bits - 1)
        fits = self.exact_in(mids, self.fmt)
        if not fits.any():
            return self.make("random")
        return self.with_max(int(self.bits_of(mids[fits][:1])[0]))

    def ties(self) -> np.ndarray:
        """Elements whose exact quotient x * M / sx is k + 1/2.

        With sx = ms * 2^e and an odd t, x = t * ms / M * 2^(e-1) has quotient t / 2; it is an
        input-format value when M divides t * ms and the significand fits. The max element
        is sx itself, so the scale is exact.
        """
        n, rng, m = self.cfg.n, self.rng, self.cfg.mx
        width = min(self.fmt.man_bits, self.scale_fmt.man_bits) + 1
        for _ in range(200):
            t0 = 2 * int(rng.integers(0, m)) + 1
            g = m // math.gcd(t0, m)
            if g >= 1 << width:
                continue
            ms = g * int(rng.integers(1, ((1 << width) - 1) // g + 1))
            step = m // math.gcd(ms, m)  # odd, as M is: t runs over odd multiples of step
            ts = step * (2 * rng.integers(0, m // step, 4 * n) + 1)
            e = -(ms.bit_length() - 1) + int(rng.integers(-3, 4))
            sx = np.ldexp(float(ms), e)
            xs = np.ldexp((ts * ms // m).astype(np.float64), e - 1)
            xs = xs[self.exact_in(xs, self.fmt)]
            sx_exact = self.exact_in([sx], self.fmt)[0] and self.exact_in([sx], self.scale_fmt)[0]
            if not xs.size or not sx_exact:
                continue
            values = rng.choice(xs, n) * np.where(rng.random(n) < 0.5, -1.0, 1.0)
            values[rng.integers(0, n)] = sx
            return self.bits_of(values)
        raise AssertionError(
            f"no tie vector found for M={m}, {self.fmt.name} inputs, {self.scale_fmt.name} scale"
        )

    def nonfinite(self) -> np.ndarray:
        """A random vector with one or two inf or NaN elements."""
        f, rng = self.fmt, self.rng
        vec = self.make("random")
        exp_ones = (1 << f.exp_bits) - 1
        for _ in range(int(rng.integers(1, 3))):
            man = 0 if rng.random() < 0.5 else int(rng.integers(1, 1 << f.man_bits))
            vec[rng.integers(0, self.cfg.n)] = self.compose(rng.integers(0, 2), exp_ones, man)
        return vec

    def mix(self, count: int, nonfinite_prob: float = 0.0) -> list[np.ndarray]:
        """``count`` vectors cycling through every kind, some made non-finite."""
        out = []
        for i in range(count):
            if self.rng.random() < nonfinite_prob:
                out.append(self.nonfinite())
            else:
                out.append(self.make(self.KINDS[i % len(self.KINDS)]))
        return out


# ---------------------------------------------------------------------------------------
# Model and scoreboard


@dataclass
class ExpectedVector:
    """Expected output of one vector, with the golden values that explain it."""

    x_bits: np.ndarray
    scale_bits: int
    codes: np.ndarray  # int32
    max_abs: Fraction | None  # None for a vector with non-finite elements


class InputUnitModel:
    """Golden outputs of ``abfp_input_unit`` from ``simulator.quantize_inputs``.

    Vectors holding inf or NaN (which the golden model refuses) give the unit's documented
    result: the canonical NaN scale and zero codes.
    """

    def __init__(self, cfg: TileConfig, inject_mismatch: bool = False):
        self.cfg = cfg
        self.inject_mismatch = inject_mismatch

    def expected(self, vectors: list[np.ndarray]) -> list[ExpectedVector]:
        cfg = self.cfg
        finite = [i for i, v in enumerate(vectors) if not is_nonfinite(v, cfg.in_fmt).any()]
        out = [
            ExpectedVector(v, cfg.scale_fmt.canonical_nan_bits, np.zeros(cfg.n, np.int32), None)
            for v in vectors
        ]
        if finite:
            x = np.stack([from_bits(vectors[i], cfg.in_fmt) for i in finite])
            codes, scales = quantize_inputs(x, cfg)
            scale_bits = to_bits(scales[:, 0], cfg.scale_fmt)
            for row, i in enumerate(finite):
                mags = np.abs(x[row].astype(np.float64))
                out[i] = ExpectedVector(
                    vectors[i], int(scale_bits[row]), codes[row, 0].copy(), Fraction(mags.max())
                )
        if self.inject_mismatch and out:
            out[0].codes[0] ^= 1
        return out


@dataclass
class InputUnitScoreboard:
    """Compare output beats with expected vectors in order, scale and every code bit for bit.

    The report names, per mismatch, the transaction, the element (or the scale), the expected
    and received value and bits, and the golden max-abs, sx and exact quotient x * M / sx.
    """

    cfg: TileConfig
    name: str
    max_report: int = 10
    expected: list[ExpectedVector] = field(default_factory=list)
    received: list[tuple[int, np.ndarray]] = field(default_factory=list)

    def receive(self, scale_bits: int, code_bits: np.ndarray) -> None:
        self.received.append((int(scale_bits), np.asarray(code_bits, np.uint32)))

    def golden_text(self, exp: ExpectedVector, element: int | None) -> str:
        cfg = self.cfg
        sfmt = cfg.scale_fmt
        sx_val = float(from_bits(np.array([exp.scale_bits], np.uint32), sfmt)[0])
        text = f"sx={sx_val!r} ({bits_text(exp.scale_bits, sfmt.width)})"
        if exp.max_abs is None:
            return text + " (vector holds inf/NaN)"
        text = f"max|x|={float(exp.max_abs)!r}, " + text
        if element is not None:
            xb = int(exp.x_bits[element])
            x = exact_value(xb, cfg.in_fmt)
            text = f"x={float(x)!r} ({bits_text(xb, cfg.in_fmt.width)}), " + text
            if sx_val != 0 and math.isfinite(sx_val):
                q = x * cfg.mx / Fraction(sx_val)
                text += f", x*M/sx={q} (~{float(q)!r})"
        return text

    def report(self) -> str:
        cfg = self.cfg
        mask = (1 << cfg.bx) - 1
        lines, mismatches = [], 0
        for index, (exp, (got_scale, got_codes)) in enumerate(
            zip(self.expected, self.received, strict=False)
        ):
            want_codes = exp.codes.astype(np.int64) & mask
            problems = []
            if got_scale != exp.scale_bits:
                got_val = float(from_bits(np.array([got_scale], np.uint32), cfg.scale_fmt)[0])
                problems.append(
                    (None, f"scale: expected {bits_text(exp.scale_bits, cfg.scale_fmt.width)} "
                           f"got {got_val!r} ({bits_text(got_scale, cfg.scale_fmt.width)})")
                )  # fmt: skip
            for k in np.flatnonzero(want_codes != got_codes):
                got = int(got_codes[k])
                got_signed = got - (1 << cfg.bx) if got >> (cfg.bx - 1) else got
                problems.append(
                    (int(k), f"element {k}: expected code {int(exp.codes[k])} "
                             f"({bits_text(want_codes[k], cfg.bx)}) got {got_signed} "
                             f"({bits_text(got, cfg.bx)})")
                )  # fmt: skip
            for element, text in problems:
                mismatches += 1
                if mismatches <= self.max_report:
                    lines.append(f"transaction {index} {text}")
                    lines.append(f"    golden: {self.golden_text(exp, element)}")
        return summarize_report(
            self.name, "mismatches", mismatches, min(mismatches, self.max_report), lines,
            len(self.expected), len(self.received),
        )  # fmt: skip

    def check(self) -> None:
        """Raise ``AssertionError`` with the report unless every transaction matched."""
        text = self.report()
        assert len(self.received) == len(self.expected), text
        mask = (1 << self.cfg.bx) - 1
        for exp, (got_scale, got_codes) in zip(self.expected, self.received, strict=True):
            want = np.concatenate([[exp.scale_bits], exp.codes.astype(np.int64) & mask])
            got = np.concatenate([[got_scale], got_codes.astype(np.int64)])
            np.testing.assert_array_equal(got, want, err_msg=text)


# ---------------------------------------------------------------------------------------
# Cycle model of the handshakes


class InputUnitCycleModel:
    """The unit's documented timing: which cycles in_ready_o and out_valid_o are high.

    The quantizer takes one buffered beat per clock for ``beats`` clocks after the clock that
    closed a vector, starting only when the output register is free or being emptied; input
    beat b may be taken once the quantizer has read buffer slot b or reads it in that clock.
    The output is valid from the clock after the quantizer's last beat.
    """

    def __init__(self, beats: int):
        self.beats = beats
        self.reset()

    def reset(self) -> None:
        self.in_beat = 0
        self.q_active = False
        self.q_beat = 0
        self.out_valid = False
        self.nonfinite = False

    def step(
        self, in_valid: bool, out_ready: bool, beat_nonfinite: bool
    ) -> tuple[bool, bool, bool]:
        """Advance one clock; returns this clock's (in_ready, out_valid, nonfinite)."""
        shown_valid, shown_nonfinite = self.out_valid, self.nonfinite
        last = self.beats - 1
        q_advance = self.q_active and (self.q_beat != 0 or not self.out_valid or out_ready)
        in_ready = (not self.q_active) or self.q_beat > self.in_beat or (
            self.q_beat == self.in_beat and q_advance
        )
        fire = in_valid and in_ready
        out_valid = self.out_valid and not out_ready
        if q_advance:
            if self.q_beat == last:
                self.q_active, self.q_beat, out_valid = False, 0, True
            else:
                self.q_beat += 1
        if fire:
            self.nonfinite = self.nonfinite or beat_nonfinite
            if self.in_beat == last:
                self.in_beat, self.q_active, self.q_beat = 0, True, 0
            else:
                self.in_beat += 1
        self.out_valid = out_valid
        return in_ready, shown_valid, shown_nonfinite


class HandshakeChecker:
    """Every clock: in_ready_o, out_valid_o and nonfinite_o are resolved and equal the model's."""

    def __init__(self, dut, cfg: TileConfig, beats: int):
        self.dut, self.cfg = dut, cfg
        self.model = InputUnitCycleModel(beats)
        self.errors: list[str] = []
        self.closing_cycles: list[int] = []

    async def run(self) -> None:
        dut, fmt, p = self.dut, self.cfg.in_fmt, self.cfg.n // self.model.beats
        while True:
            await FallingEdge(dut.clk_i)
            await ReadOnly()
            cycle = current_cycle()
            if not dut.rst_ni.value.is_resolvable or int(dut.rst_ni.value) == 0:
                self.model.reset()
                continue
            signals = {
                n: getattr(dut, n).value
                for n in ("in_valid_i", "in_ready_o", "out_valid_o", "out_ready_i", "nonfinite_o")
            }
            bad = [n for n, v in signals.items() if not v.is_resolvable]
            if bad:
                self.errors.append(f"cycle {cycle}: unresolved {bad}")
                continue
            in_valid = int(signals["in_valid_i"]) == 1
            beat_nonfinite = False
            if in_valid:
                data = dut.in_data_i.value
                if not data.is_resolvable:
                    self.errors.append(f"cycle {cycle}: in_data_i unresolved while valid")
                    continue
                lanes = unpack_lanes(int(data), fmt.width, p)
                beat_nonfinite = bool(is_nonfinite(lanes, fmt).any())
            closing = self.model.in_beat == self.model.beats - 1
            want = self.model.step(in_valid, int(signals["out_ready_i"]) == 1, beat_nonfinite)
            got = tuple(
                int(signals[n]) == 1 for n in ("in_ready_o", "out_valid_o", "nonfinite_o")
            )
            if got != want:
                self.errors.append(
                    f"cycle {cycle}: (in_ready, out_valid, nonfinite) = {got}, cycle model {want}"
                )
            if in_valid and got[0] and closing:
                self.closing_cycles.append(cycle)


# ---------------------------------------------------------------------------------------
# Bench


class InputUnitBench:
    """Clock, reset, driver, monitor, cycle model, golden model and scoreboard."""

    def __init__(self, dut, idle_prob: float, stall_prob: float, seed_offset: int):
        self.dut = dut
        self.cfg = tile_config()
        self.p = env_int("ABFP_P", self.cfg.n)
        self.beats = self.cfg.n // self.p
        seed = env_int("ABFP_SEED", 1)
        self.rng = np.random.default_rng([seed, seed_offset])
        self.maker = VectorMaker(self.cfg, self.rng)
        self.model = InputUnitModel(self.cfg, bool(env_int("ABFP_INJECT_MISMATCH", 0)))
        self.source = ValidReadySource(
            dut.clk_i, dut.in_valid_i, dut.in_ready_o, {"in_data_i": dut.in_data_i},
            self.rng, idle_prob,
        )  # fmt: skip
        self.sink = ValidReadySink(
            dut.clk_i, dut.out_valid_o, dut.out_ready_i,
            {"out_scale_o": dut.out_scale_o, "out_codes_o": dut.out_codes_o},
            self.rng, stall_prob,
        )  # fmt: skip
        self.handshakes = HandshakeChecker(dut, self.cfg, self.beats)

    async def start(self) -> None:
        dut = self.dut
        dut.rst_ni.value = 0
        dut.in_valid_i.value = 0
        dut.in_data_i.value = 0
        dut.out_ready_i.value = 0
        cocotb.start_soon(Clock(dut.clk_i, CLOCK_PERIOD_NS, unit="ns").start())
        await self.reset()
        cocotb.start_soon(self.sink.run())
        cocotb.start_soon(self.handshakes.run())

    async def reset(self, cycles: int = 3) -> None:
        await pulse_reset(self.dut.clk_i, self.dut.rst_ni, [self.dut.in_valid_i], cycles)

    def beats_of(self, vectors: list[np.ndarray]) -> list[dict[str, int]]:
        width = self.cfg.in_fmt.width
        return [
            {"in_data_i": pack_lanes(vec[b * self.p : (b + 1) * self.p], width)}
            for vec in vectors
            for b in range(self.beats)
        ]

    def scoreboard(self, vectors: list[np.ndarray], name: str) -> InputUnitScoreboard:
        return InputUnitScoreboard(self.cfg, name, expected=self.model.expected(vectors))

    async def drain(self, count: int) -> None:
        """Wait for ``count`` outputs, then long enough to see any extra one."""
        for _ in range(50 * (self.beats + 2) + 20 * count):
            if len(self.sink.beats) >= count:
                break
            await FallingEdge(self.dut.clk_i)
        await ClockCycles(self.dut.clk_i, 4 * (self.beats + 2))

    def collect(self, board: InputUnitScoreboard) -> None:
        for beat in self.sink.beats:
            codes = unpack_lanes(beat["out_codes_o"], self.cfg.bx, self.cfg.n)
            board.receive(beat["out_scale_o"], codes)

    def check(self, board: InputUnitScoreboard) -> None:
        assert not self.sink.errors, "\n".join(self.sink.errors)
        assert not self.handshakes.errors, "\n".join(self.handshakes.errors[:20])
        self.collect(board)
        board.check()

    async def run_stream(self, vectors: list[np.ndarray], name: str) -> InputUnitScoreboard:
        board = self.scoreboard(vectors, name)
        await self.source.send(self.beats_of(vectors))
        await self.drain(len(vectors))
        self.check(board)
        return board


def txns(default: int = 40) -> int:
    return max(4, env_int("ABFP_TXNS", default))


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
    """Random vectors of every kind with random gaps on valid and backpressure on ready."""
    bench = InputUnitBench(dut, idle_prob=0.3, stall_prob=0.4, seed_offset=1)
    await bench.start()
    await bench.run_stream(bench.maker.mix(txns()), "stalled")


@cocotb.test()
async def directed_test(dut):
    """Each directed kind (ties, zeros, huge element, scale overflow/underflow/ties...)."""
    bench = InputUnitBench(dut, idle_prob=0.1, stall_prob=0.2, seed_offset=2)
    await bench.start()
    repeats = max(1, txns() // (2 * len(VectorMaker.KINDS)))
    vectors = [bench.maker.make(kind) for kind in VectorMaker.KINDS for _ in range(repeats)]
    board = await bench.run_stream(vectors, "directed")
    # The tie vectors did hit exact ties x * M / sx = k + 1/2.
    cfg = bench.cfg
    ties = 0
    for exp in board.expected[VectorMaker.KINDS.index("ties") * repeats :][:repeats]:
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
    vectors = bench.maker.mix(txns(), nonfinite_prob=0.3) + [bench.maker.nonfinite()]
    await bench.run_stream(vectors, "non-finite")
    assert int(dut.nonfinite_o.value) == 1, "nonfinite_o is not sticky"


@cocotb.test()
async def reset_mid_stream_test(dut):
    """A reset in the middle of a vector: the flag clears and nothing stale comes out."""
    bench = InputUnitBench(dut, idle_prob=0.2, stall_prob=0.3, seed_offset=4)
    await bench.start()
    count = txns(16)
    first = [bench.maker.nonfinite()] + bench.maker.mix(count - 1)
    first_board = bench.scoreboard(first, "before reset")
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

"""cocotb tests of the combinational floating-point blocks against ``simulator.formats``.

``ABFP_FP_CASE`` (JSON) names the formats of the block under test: ``{"a": "bf16", "b":
"bf16", "out": "fp32"}`` for ``fp_mul``, ``{"fmt": "fp32"}`` for ``fp_add``, ``{"in": "fp32",
"out": "bf16"}`` for ``fp_convert``, ``{"width": 8, "out": "fp32"}`` for ``fp_int_to_float``.
Operands: every pairing of special values, random bit patterns (``ABFP_TXNS`` of them, seeded
by ``ABFP_SEED``), structured cases (ties, cancellations, near-boundary values), and every
input pattern where a block has at most 16 input bits.
"""

from __future__ import annotations

import json
import os

import cocotb
import numpy as np
from bench_common import Expected, Scoreboard, check_parameters, describe_bits, env_int
from cocotb.triggers import Timer
from fp_cases import block_parameters

from simulator.formats import FloatFormat, add, from_bits, int_to_float, mul, round_to, to_bits

EXHAUSTIVE_BITS = 16


def exp_ones_of(fmt: FloatFormat) -> int:
    """The all-ones exponent field of ``fmt`` (infinities and NaNs)."""
    return (1 << fmt.exp_bits) - 1


def case(dut) -> dict:
    """The case's formats (``ABFP_FP_CASE``), once the built block is checked to match them."""
    spec = json.loads(os.environ["ABFP_FP_CASE"])
    check_parameters(dut, block_parameters(dut._name, spec), f"the formats {spec}")
    return spec


def rng() -> np.random.Generator:
    return np.random.default_rng(env_int("ABFP_SEED", 1))


def special_bits(fmt: FloatFormat) -> np.ndarray:
    """Both zeros, edge subnormals and normals, ones, largest finites, infinities, NaNs."""
    m, exp_ones = fmt.man_bits, exp_ones_of(fmt)
    man_ones = (1 << m) - 1
    inf = exp_ones << m
    max_finite = ((exp_ones - 1) << m) | man_ones
    one = fmt.bias << m
    magnitudes = [
        0, 1, 2, man_ones, 1 << m, (1 << m) + 1, one, one + 1, one - 1,
        max_finite, max_finite - 1, inf, inf | (1 << (m - 1)), inf | 1, inf | man_ones,
    ]  # fmt: skip
    sign = 1 << (fmt.width - 1)
    return np.unique(np.array(magnitudes + [v | sign for v in magnitudes], np.uint32))


def random_bits(gen: np.random.Generator, fmt: FloatFormat, count: int) -> np.ndarray:
    """Uniform bit patterns, every class included."""
    return gen.integers(0, 1 << fmt.width, size=count, dtype=np.uint64).astype(np.uint32)


def moderate_bits(gen: np.random.Generator, fmt: FloatFormat, count: int) -> np.ndarray:
    """Random signs and mantissas with exponents within 4 of the bias (products stay normal)."""
    exponent = np.clip(fmt.bias + gen.integers(-4, 5, size=count), 1, exp_ones_of(fmt) - 1)
    mantissa = gen.integers(0, 1 << fmt.man_bits, size=count)
    sign = gen.integers(0, 2, size=count)
    return ((sign << (fmt.width - 1)) | (exponent << fmt.man_bits) | mantissa).astype(np.uint32)


def grid_value(bits: np.ndarray, fmt: FloatFormat) -> np.ndarray:
    """float64 magnitude of non-negative patterns, reading the all-ones exponent as a normal one.

    This extends the finite grid by one step above the largest finite value, so midpoints
    next to it (which round to infinity) come out right.
    """
    bits = bits.astype(np.int64)
    exponent = bits >> fmt.man_bits
    mantissa = bits & ((1 << fmt.man_bits) - 1)
    significand = np.where(exponent == 0, mantissa, mantissa + (1 << fmt.man_bits))
    scale = np.maximum(exponent, 1) - fmt.bias - fmt.man_bits
    return np.ldexp(significand.astype(np.float64), scale.astype(np.int32))


def midpoint_bits(gen, src: FloatFormat, dst: FloatFormat, count: int) -> np.ndarray:
    """``src`` patterns of exact midpoints between neighbours of ``dst`` and their neighbours.

    Only midpoints that ``src`` holds exactly are kept.
    """
    finite_top = exp_ones_of(dst) << dst.man_bits
    low = gen.integers(0, finite_top, size=count).astype(np.int64)
    low = np.concatenate([low, [0, finite_top - 1, (1 << dst.man_bits) - 1, 1 << dst.man_bits]])
    mid = (grid_value(low, dst) + grid_value(low + 1, dst)) / 2
    exact = round_to(mid, src).astype(np.float64) == mid
    mid = mid[exact]
    mid = np.where(gen.integers(0, 2, size=mid.size) == 1, -mid, mid)
    centre = to_bits(mid.astype(np.float32), src).astype(np.int64)
    magnitude_mask = (1 << (src.width - 1)) - 1
    around = [centre]
    for step in (-1, 1):
        moved = (centre & magnitude_mask) + step
        keep = (moved >= 0) & (moved < (exp_ones_of(src) << src.man_bits))
        around.append(((centre & ~magnitude_mask) | moved)[keep])
    return np.concatenate(around).astype(np.uint32)


def all_bits(fmt: FloatFormat) -> np.ndarray:
    return np.arange(1 << fmt.width, dtype=np.uint32)


def pairs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every pairing of the two operand sets."""
    return np.repeat(a, b.size), np.tile(b, a.size)


async def apply(dut, inputs: dict[str, np.ndarray], output: str) -> np.ndarray:
    """Drive each vector, let the logic settle, and read the output bits."""
    handles = {name: getattr(dut, name) for name in inputs}
    out = getattr(dut, output)
    count = len(next(iter(inputs.values())))
    got = np.empty(count, np.uint32)
    for k in range(count):
        for name, handle in handles.items():
            handle.value = int(inputs[name][k])
        await Timer(1, unit="ns")
        value = out.value
        assert value.is_resolvable, f"vector {k}: {output} = {value} has X/Z bits"
        got[k] = int(value)
    return got


def score(name: str, got: np.ndarray, expected: np.ndarray, fmt: FloatFormat, explain) -> None:
    board = Scoreboard(name)
    for k in range(expected.size):
        board.expect(Expected(expected[k : k + 1], fmt, lambda _lane, k=k: explain(k)))
        board.receive(got[k : k + 1])
    board.check()


@cocotb.test()
async def fp_convert_test(dut):
    """fp_convert: every input pattern of a narrow format, else random, specials and ties."""
    spec = case(dut)
    src, dst = FloatFormat.parse(spec["in"]), FloatFormat.parse(spec["out"])
    gen = rng()
    if src.width <= EXHAUSTIVE_BITS:
        a = all_bits(src)
    else:
        txns = env_int("ABFP_TXNS", 4000)
        parts = [special_bits(src), random_bits(gen, src, txns)]
        if dst.man_bits < src.man_bits or dst.exp_bits < src.exp_bits:
            parts.append(midpoint_bits(gen, src, dst, txns))
        a = np.concatenate(parts)
    got = await apply(dut, {"a_i": a}, "y_o")
    expected = to_bits(round_to(from_bits(a, src), dst), dst)
    score(
        f"fp_convert {src}->{dst}", got, expected, dst,
        lambda k: f"a = {describe_bits(a[k], src)}",
    )  # fmt: skip


@cocotb.test()
async def fp_mul_test(dut):
    """fp_mul: all special pairings, random and moderate operands."""
    spec = case(dut)
    fa, fb, fo = (FloatFormat.parse(spec[k]) for k in ("a", "b", "out"))
    gen = rng()
    txns = env_int("ABFP_TXNS", 4000)
    special_a, special_b = pairs(special_bits(fa), special_bits(fb))
    a = np.concatenate([special_a, random_bits(gen, fa, txns), moderate_bits(gen, fa, txns)])
    b = np.concatenate([special_b, random_bits(gen, fb, txns), moderate_bits(gen, fb, txns)])
    got = await apply(dut, {"a_i": a, "b_i": b}, "prod_o")
    expected = to_bits(mul(from_bits(a, fa), from_bits(b, fb), fo), fo)
    score(
        f"fp_mul {fa}*{fb}->{fo}", got, expected, fo,
        lambda k: f"a = {describe_bits(a[k], fa)}, b = {describe_bits(b[k], fb)}",
    )  # fmt: skip


@cocotb.test()
async def fp_add_test(dut):
    """fp_add: all special pairings, random operands, near-cancellations, close exponents."""
    fmt = FloatFormat.parse(case(dut)["fmt"])
    gen = rng()
    if 2 * fmt.width <= EXHAUSTIVE_BITS:
        a, b = pairs(all_bits(fmt), all_bits(fmt))
    else:
        txns = env_int("ABFP_TXNS", 4000)
        special_a, special_b = pairs(special_bits(fmt), special_bits(fmt))
        base = random_bits(gen, fmt, txns)
        sign = np.uint32(1 << (fmt.width - 1))
        # b = -(a + small step): exact or near-exact cancellation, in every range
        cancel = np.clip(
            (base & ~sign).astype(np.int64) + gen.integers(-3, 4, size=txns),
            0, (exp_ones_of(fmt) << fmt.man_bits) - 1,
        ).astype(np.uint32) | (~base & sign)  # fmt: skip
        # b within a few binades of a, either sign: alignment and rounding paths
        close = (
            (base & ~sign).astype(np.int64)
            + (gen.integers(-3, 4, size=txns) << fmt.man_bits)
            + gen.integers(-(1 << fmt.man_bits), 1 << fmt.man_bits, size=txns)
        )
        close = np.clip(close, 0, (exp_ones_of(fmt) << fmt.man_bits) - 1).astype(np.uint32)
        close |= gen.integers(0, 2, size=txns).astype(np.uint32) * sign
        a = np.concatenate([special_a, random_bits(gen, fmt, txns), base, base])
        b = np.concatenate([special_b, random_bits(gen, fmt, txns), cancel, close])
    got = await apply(dut, {"a_i": a, "b_i": b}, "sum_o")
    expected = to_bits(add(from_bits(a, fmt), from_bits(b, fmt), fmt), fmt)
    score(
        f"fp_add {fmt}", got, expected, fmt,
        lambda k: f"a = {describe_bits(a[k], fmt)}, b = {describe_bits(b[k], fmt)}",
    )  # fmt: skip


@cocotb.test()
async def fp_int_to_float_test(dut):
    """fp_int_to_float: every integer of a narrow width, else extremes, powers of two, random."""
    spec = case(dut)
    width, fmt = int(spec["width"]), FloatFormat.parse(spec["out"])
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    if width <= EXHAUSTIVE_BITS:
        ints = np.arange(lo, hi + 1, dtype=np.int64)
    else:
        powers = np.array([1 << s for s in range(width - 1)], np.int64)
        edges = np.concatenate([powers - 1, powers, powers + 1, [lo, lo + 1, hi, hi - 1, 0]])
        edges = np.clip(np.concatenate([edges, -edges]), lo, hi)
        ints = np.concatenate([edges, rng().integers(lo, hi + 1, size=env_int("ABFP_TXNS", 4000))])
    got = await apply(dut, {"int_i": ints & ((1 << width) - 1)}, "y_o")
    expected = to_bits(int_to_float(ints, fmt), fmt)
    score(f"fp_int_to_float {width}->{fmt}", got, expected, fmt, lambda k: f"int = {ints[k]}")

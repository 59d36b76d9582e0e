"""The tile configuration: the single source of truth for widths, formats and constants."""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, fields
from fractions import Fraction

import numpy as np

from simulator import noise_kinds
from simulator.formats import BF16, FP32, FloatFormat, round_fraction

__all__ = ["TileConfig", "NOISE_KINDS", "code_max", "gain_range"]

NOISE_KINDS = noise_kinds.names()  # the names of simulator.noise_kinds.KINDS
_FORMAT_FIELDS = ("in_fmt", "w_fmt", "scale_fmt", "partial_fmt", "acc_fmt", "out_fmt")
_BIT_FIELDS = ("bx", "bw", "by")
_BITS_RANGE = (2, 16)
_MAX_TILE = 1 << 24


def code_max(bits: int) -> int:
    """Largest code of a signed symmetric quantizer of ``bits`` bits, ``2**(bits-1) - 1``."""
    return (1 << (bits - 1)) - 1


@functools.cache
def gain_range(n: int, by: int) -> tuple[float, float]:
    """The smallest and largest float64 gains whose ``K = to(fp32, n / (M(by) * G))`` is
    finite and nonzero (docs/arithmetic.md step 8), exact.

    The exact quotient rounds to +inf from the midpoint between fp32's largest finite value
    and ``2**128`` upwards (the tie goes to the even ``2**128``), and to zero up to half the
    smallest subnormal (the tie goes to the even zero); so ``G`` must exceed
    ``n / (M(by) * (2**128 - 2**103))`` and stay below ``n * 2**150 / M(by)``. Within this
    range ``kA`` is a normal, finite float64 too.
    """
    ratio = Fraction(n, code_max(by))
    overflow_from = Fraction(FP32.max_finite) + Fraction(2) ** (FP32.bias - FP32.man_bits - 1)
    zero_up_to = Fraction(FP32.min_subnormal) / 2
    return _float_above(ratio / overflow_from), _float_below(ratio / zero_up_to)


def _float_above(q: Fraction) -> float:
    """The smallest float64 strictly greater than ``q``."""
    f = float(q)  # correctly rounded
    return f if Fraction(f) > q else math.nextafter(f, math.inf)


def _float_below(q: Fraction) -> float:
    """The largest float64 strictly less than ``q``."""
    f = float(q)
    return f if Fraction(f) < q else math.nextafter(f, -math.inf)


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


@dataclass(frozen=True)
class TileConfig:
    """Configuration of one ABFP analog tile (docs/arithmetic.md).

    Parameters
    ----------
    n : int
        Tile width: elements of one analog dot product, 1 to 2**24.
    bx, bw, by : int
        DAC (input), weight and ADC bits of the signed symmetric quantizers, 2 to 16.
    gain : float
        Analog gain G before the ADC, within :func:`gain_range` ``(n, by)`` (so that the
        rescale constant K is a finite, nonzero fp32).
    noise : str
        Analog noise added before the ADC: a name of :data:`simulator.noise_kinds.KINDS`
        (``"none"``, ``"uniform"``, ``"gaussian"``).
    noise_amplitude : float
        Width of uniform noise or sigma of gaussian noise, in ADC LSB, finite and >= 0.
    in_fmt, w_fmt, scale_fmt, partial_fmt, acc_fmt, out_fmt : FloatFormat or str
        Formats of the inputs, weights, block scales, per-tile partial results, cross-tile
        accumulator and final output (names such as ``"bf16"`` are accepted).
    seed : int
        Noise seed, 0 to 2**64 - 1.

    Raises
    ------
    ValueError, TypeError
        For any invalid field, naming it and its legal range. The integer dot product of a
        tile must be exact in float64 (``n * M(bx) * M(bw) < 2**53``), and the partial format
        must widen exactly into the accumulator format (docs/arithmetic.md step 9).
    """

    n: int = 128
    bx: int = 8
    bw: int = 8
    by: int = 8
    gain: float = 1.0
    noise: str = "uniform"
    noise_amplitude: float = 1.0
    in_fmt: FloatFormat = BF16
    w_fmt: FloatFormat = BF16
    scale_fmt: FloatFormat = BF16
    partial_fmt: FloatFormat = BF16
    acc_fmt: FloatFormat = FP32
    out_fmt: FloatFormat = BF16
    seed: int = 0

    def __post_init__(self):
        if not _is_int(self.n) or not 1 <= self.n <= _MAX_TILE:
            raise ValueError(f"TileConfig.n must be an int in [1, {_MAX_TILE}], got {self.n!r}")
        object.__setattr__(self, "n", int(self.n))
        for field in _BIT_FIELDS:
            value = getattr(self, field)
            lo, hi = _BITS_RANGE
            if not _is_int(value) or not lo <= value <= hi:
                raise ValueError(
                    f"TileConfig.{field} must be an int in [{lo}, {hi}], got {value!r}"
                )
            object.__setattr__(self, field, int(value))
        for field, allow_zero in (("gain", False), ("noise_amplitude", True)):
            value = getattr(self, field)
            if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(
                value, bool
            ):
                raise ValueError(f"TileConfig.{field} must be a real number, got {value!r}")
            value = float(value)
            if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
                rng = "finite and >= 0" if allow_zero else "finite and > 0"
                raise ValueError(f"TileConfig.{field} must be {rng}, got {value!r}")
            object.__setattr__(self, field, value)
        if self.noise not in NOISE_KINDS:
            raise ValueError(f"TileConfig.noise must be one of {NOISE_KINDS}, got {self.noise!r}")
        low, high = gain_range(self.n, self.by)
        if not low <= self.gain <= high:
            raise ValueError(
                f"TileConfig.gain must be in [{low!r}, {high!r}] for n={self.n} and "
                f"by={self.by}, so that K = n / (M(by) * G) rounds to a finite, nonzero fp32; "
                f"got {self.gain!r}"
            )
        for field in _FORMAT_FIELDS:
            try:
                fmt = FloatFormat.parse(getattr(self, field))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"TileConfig.{field}: {exc}") from None
            object.__setattr__(self, field, fmt)
        p, a = self.partial_fmt, self.acc_fmt
        if p.exp_bits > a.exp_bits or p.man_bits > a.man_bits:
            raise ValueError(
                f"TileConfig.partial_fmt ({p.name}) must widen exactly into acc_fmt ({a.name}): "
                "its exponent and mantissa bits may not exceed the accumulator's"
            )
        if not _is_int(self.seed) or not 0 <= self.seed < 1 << 64:
            raise ValueError(f"TileConfig.seed must be an int in [0, 2**64), got {self.seed!r}")
        object.__setattr__(self, "seed", int(self.seed))
        if self.mac_bound >= 1 << 53:
            raise ValueError(
                f"TileConfig: n * M(bx) * M(bw) = {self.mac_bound} must be below 2**53 so the "
                f"integer dot product is exact; reduce n ({self.n}), bx ({self.bx}) or bw "
                f"({self.bw})"
            )

    # ---- derived constants -------------------------------------------------------------
    @property
    def mx(self) -> int:
        """Largest DAC code, ``M(bx)``."""
        return code_max(self.bx)

    @property
    def mw(self) -> int:
        """Largest weight code, ``M(bw)``."""
        return code_max(self.bw)

    @property
    def my(self) -> int:
        """Largest ADC code, ``M(by)``."""
        return code_max(self.by)

    @property
    def mac_bound(self) -> int:
        """Largest magnitude of a tile's integer dot product, ``n * M(bx) * M(bw)``."""
        return self.n * self.mx * self.mw

    @property
    def gain_constant(self) -> float:
        """``kA = (G * M(by)) / (n * M(bx) * M(bw))`` in float64, in that order (step 5)."""
        return (self.gain * self.my) / float(self.mac_bound)

    @property
    def rescale_constant(self) -> np.float32:
        """``K = to(fp32, n / (M(by) * G))`` (step 8): the exact quotient rounded once."""
        exact = Fraction(self.n) / (Fraction(self.my) * Fraction(self.gain))
        return np.float32(round_fraction(exact, FP32))

    @property
    def rescale_constant_bits(self) -> int:
        """fp32 bit pattern of :attr:`rescale_constant` (the output unit's ``k_i``)."""
        return int(np.asarray(self.rescale_constant, np.float32).view(np.uint32))

    @property
    def noise_code(self) -> int:
        """The kernels' code of :attr:`noise` (:data:`simulator.noise_kinds.KINDS`)."""
        return noise_kinds.kind(self.noise).code

    def code_max(self, bits: int) -> int:
        """``M(bits) = 2**(bits-1) - 1``."""
        return code_max(bits)

    def tiles(self, k: int) -> int:
        """Number of tiles ``T = ceil(k / n)`` for an inner dimension ``k``."""
        return -(-k // self.n)

    # ---- interfaces --------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Plain-data form (formats by name) for manifests and TOML/JSON round trips."""
        out = asdict(self)
        for field in _FORMAT_FIELDS:
            out[field] = getattr(self, field).name
        return out

    @classmethod
    def from_dict(cls, data: dict) -> TileConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown TileConfig fields {unknown}; known: {sorted(names)}")
        return cls(**data)

    def hdl_parameters(self, unit: str, **extra) -> dict:
        """Verilog parameters of the registered RTL unit ``unit`` for this configuration.

        Parameters
        ----------
        unit : str
            A key of :data:`simulator.hdl.UNITS` (``"input"``: ``abfp_input_unit``,
            ``"output"``: ``abfp_output_unit``).
        **extra
            The unit's parameters that are not tile properties (``P`` for the input unit,
            ``LANES`` for the output unit); omitted ones take the RTL's defaults.

        Returns
        -------
        dict
            Parameter name to int, range-checked against what the RTL accepts.
        """
        from simulator import hdl

        return hdl.unit(unit).parameters(self, **extra)

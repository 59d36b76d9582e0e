"""Energy and latency of matrix products on the tile, from cited per-operation figures.

A :class:`CostModel` holds every constant (docs/cost.md gives each one's source); none has a
default, so a missing constant is an error naming it. :meth:`CostModel.layer` prices one
matrix product ``(rows, k) @ (n_out, k).T`` under a :class:`~simulator.TileConfig`:

- operation counts follow the controller's sequencing (``rtl/abfp_tile.v``): one DAC beat per
  (input row, output-row group of LANES, tile), the input unit taking ``n / P`` beats per
  input vector and tile, the output unit one beat per (row, group, tile);
- energy is the sum over the stages of count x energy per operation, the ADC's energy per
  conversion growing with its bits (Walden and Schreier figures of merit), the DAC's too;
- cycles are :func:`simulator.timing.schedule`'s ``total_cycles`` for the product with the
  array's conversion latency ``array_settle_cycles + ceil(by / adc_bits_per_cycle)``;
  latency = cycles / ``clock_hz``.

:meth:`CostModel.network` sums the layers of a network run one after another on one tile.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields

from simulator.config import TileConfig
from simulator.timing import ArrayTiming, schedule

__all__ = ["DEFAULT", "STAGES", "CostError", "CostModel", "LayerCost", "LayerShape",
           "NetworkCost"]  # fmt: skip

# Energy stages of a product, in the order the reports list them.
STAGES = ("dac", "mac", "adc", "input_unit", "output_unit", "sram_weights", "sram_scales",
          "sram_activations")  # fmt: skip


class CostError(ValueError):
    """A cost constant that is missing, unknown or out of range, or a bad layer shape."""


@dataclass(frozen=True)
class LayerShape:
    """One matrix product a network runs: ``rows`` input vectors of ``k`` elements against
    ``n_out`` weight rows (``(rows, k) @ (n_out, k).T``), under layer ``name``."""

    name: str
    rows: int
    k: int
    n_out: int

    def __post_init__(self):
        for field in ("rows", "k", "n_out"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise CostError(f"layer {self.name!r}: {field} must be an int >= 1, got {value!r}")


_INT_FIELDS = ("input_unit_cells", "input_unit_per_beat", "output_unit_cells",
               "output_unit_lanes", "array_settle_cycles", "adc_bits_per_cycle",
               "adc_share")  # fmt: skip


@dataclass(frozen=True)
class CostModel:
    """Every per-operation figure of the cost model; sources in docs/cost.md.

    Attributes
    ----------
    adc_walden_fom_j : float
        Walden figure of merit ``P / (fs 2^ENOB)``, joules per conversion step.
    adc_schreier_fom_db : float
        Schreier figure of merit ``SNDR + 10 log10(fs / 2 / P)``, dB: the thermal-noise bound.
    dac_energy_1bit_j : float
        Energy of one 1-bit DAC conversion, joules; a b-bit one costs ``2^(b-1)`` times it.
    analog_mac_energy_j : float
        Energy of one analog multiply-accumulate in the array, joules.
    digital_energy_per_cell_j : float
        Energy per synthesized generic cell per beat of a digital unit, joules.
    input_unit_cells, input_unit_per_beat : int
        Cells of the synthesized ``abfp_input_unit`` and its elements per beat (P).
    output_unit_cells, output_unit_lanes : int
        Cells of the synthesized ``abfp_output_unit`` and its lanes (LANES).
    sram_energy_per_bit_j : float
        Energy of reading (or writing) one bit of on-chip SRAM, joules.
    clock_hz : float
        Clock of the tile, hertz.
    array_settle_cycles : int
        Cycles of the array's conversion latency besides the ADC's bit cycles.
    adc_bits_per_cycle : int
        Bits the ADC resolves per cycle (1 for a synchronous SAR ADC).
    adc_share : int
        Output rows per ADC (R of :class:`simulator.timing.ArrayTiming`).
    """

    adc_walden_fom_j: float
    adc_schreier_fom_db: float
    dac_energy_1bit_j: float
    analog_mac_energy_j: float
    digital_energy_per_cell_j: float
    input_unit_cells: int
    input_unit_per_beat: int
    output_unit_cells: int
    output_unit_lanes: int
    sram_energy_per_bit_j: float
    clock_hz: float
    array_settle_cycles: int
    adc_bits_per_cycle: int
    adc_share: int

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _INT_FIELDS:
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise CostError(f"cost constant {f.name} must be an int >= 1, got {value!r}")
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise CostError(f"cost constant {f.name} must be a real number, got {value!r}")
            if not math.isfinite(value) or value <= 0:
                raise CostError(f"cost constant {f.name} must be finite and > 0, got {value!r}")
            object.__setattr__(self, f.name, float(value))

    # ---- construction ------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping) -> CostModel:
        """A model from plain data (a JSON/TOML table); every constant must be present.

        Raises
        ------
        CostError
            A missing or unknown constant (named, with docs/cost.md for the sources), or a
            value out of range.
        """
        if not isinstance(data, Mapping):
            raise CostError(f"cost constants must be a table/dict, got {type(data).__name__}")
        names = [f.name for f in fields(cls)]
        missing = [n for n in names if n not in data]
        if missing:
            raise CostError(f"cost constant(s) {missing} missing (docs/cost.md lists each "
                            "constant and its source)")  # fmt: skip
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise CostError(f"unknown cost constant(s) {unknown}; known: {names}")
        return cls(**{n: data[n] for n in names})

    def to_dict(self) -> dict:
        return asdict(self)

    # ---- per-operation figures ---------------------------------------------------------
    def adc_energy(self, bits: int) -> float:
        """Joules per conversion of a ``bits``-bit ADC (ENOB = bits): the larger of the Walden
        figure ``FoM_W 2^bits`` and the Schreier bound ``10^((SNDR - FoM_S) / 10) / 2`` with
        ``SNDR = 6.02 bits + 1.76`` dB."""
        bits = _bits(bits)
        walden = self.adc_walden_fom_j * 2.0**bits
        sndr_db = 6.02 * bits + 1.76
        schreier = 0.5 * 10.0 ** ((sndr_db - self.adc_schreier_fom_db) / 10.0)
        return max(walden, schreier)

    def dac_energy(self, bits: int) -> float:
        """Joules per conversion of a ``bits``-bit DAC, ``dac_energy_1bit_j 2^(bits-1)``."""
        return self.dac_energy_1bit_j * 2.0 ** (_bits(bits) - 1)

    def conversion_latency(self, by: int) -> int:
        """Cycles from a DAC beat to the first ADC beat: ``array_settle_cycles +
        ceil(by / adc_bits_per_cycle)``."""
        return self.array_settle_cycles + -(-_bits(by) // self.adc_bits_per_cycle)

    def array_timing(self, by: int) -> ArrayTiming:
        """The :class:`~simulator.timing.ArrayTiming` of an ADC of ``by`` bits."""
        try:
            return ArrayTiming(self.conversion_latency(by), self.adc_share)
        except ValueError as exc:
            raise CostError(f"cost constants give an array the timing model refuses: {exc}") \
                from None

    # ---- products ----------------------------------------------------------------------
    def layer(self, config: TileConfig, shape: LayerShape) -> LayerCost:
        """Energy and latency of one product ``shape`` on a tile configured by ``config``.

        Counts (T = ceil(k / n), groups = ceil(n_out / LANES), padding of a ragged last tile
        or group idle): DAC conversions ``rows groups k``, MACs ``rows n_out k``, ADC
        conversions ``rows n_out T``, input-unit beats ``rows T n / P``, output-unit beats
        ``rows groups T``; SRAM bits: weight codes ``n_out k bw`` (read once per product),
        weight scales ``rows n_out T`` scales, activations ``rows k`` inputs read and
        ``rows n_out`` outputs written, each in its format's width.
        """
        if not isinstance(config, TileConfig):
            raise CostError(f"layer {shape.name!r}: config must be a TileConfig, got "
                            f"{type(config).__name__}")  # fmt: skip
        if not isinstance(shape, LayerShape):
            raise CostError(f"expected a LayerShape, got {type(shape).__name__}")
        rows, k, n_out = shape.rows, shape.k, shape.n_out
        lanes = self.output_unit_lanes
        per_beat = math.gcd(config.n, self.input_unit_per_beat)
        tiles, groups = config.tiles(k), -(-n_out // lanes)
        counts = {
            "dac_conversions": rows * groups * k,
            "macs": rows * n_out * k,
            "adc_conversions": rows * n_out * tiles,
            "input_unit_beats": rows * tiles * (config.n // per_beat),
            "output_unit_beats": rows * groups * tiles,
            "sram_weight_bits": n_out * k * config.bw,
            "sram_scale_bits": rows * n_out * tiles * config.scale_fmt.width,
            "sram_activation_bits": rows * (k * config.in_fmt.width
                                            + n_out * config.out_fmt.width),
        }  # fmt: skip
        cell = self.digital_energy_per_cell_j
        energy = {
            "dac": counts["dac_conversions"] * self.dac_energy(config.bx),
            "mac": counts["macs"] * self.analog_mac_energy_j,
            "adc": counts["adc_conversions"] * self.adc_energy(config.by),
            "input_unit": counts["input_unit_beats"] * self.input_unit_cells * cell,
            "output_unit": counts["output_unit_beats"] * self.output_unit_cells * cell,
            "sram_weights": counts["sram_weight_bits"] * self.sram_energy_per_bit_j,
            "sram_scales": counts["sram_scale_bits"] * self.sram_energy_per_bit_j,
            "sram_activations": counts["sram_activation_bits"] * self.sram_energy_per_bit_j,
        }
        try:
            timed = schedule(config, self.array_timing(config.by), rows, k, groups * lanes,
                             lanes=lanes, per_beat=per_beat)  # fmt: skip
        except ValueError as exc:
            raise CostError(f"layer {shape.name!r}: {exc}") from None
        return LayerCost(shape, config, counts, energy, timed.total_cycles,
                         timed.total_cycles / self.clock_hz, dict(timed.utilisation))  # fmt: skip

    def network(self, layers: Iterable[tuple[LayerShape, TileConfig]]) -> NetworkCost:
        """The products of a network, run one after another on one tile."""
        return NetworkCost(tuple(self.layer(config, shape) for shape, config in layers))


def _bits(bits) -> int:
    if isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= 16:
        raise CostError(f"converter bits must be an int in [2, 16], got {bits!r}")
    return bits


@dataclass(frozen=True)
class LayerCost:
    """What one product costs: its operation counts, energy per stage (joules), cycles,
    latency (seconds) and the timing model's stage utilisation."""

    shape: LayerShape
    config: TileConfig
    counts: dict
    energy: dict
    cycles: int
    latency_s: float
    utilisation: dict

    @property
    def energy_j(self) -> float:
        return math.fsum(self.energy.values())

    def to_dict(self) -> dict:
        cfg = self.config
        return {"layer": self.shape.name, "rows": self.shape.rows, "k": self.shape.k,
                "n_out": self.shape.n_out, "n": cfg.n, "bx": cfg.bx, "bw": cfg.bw,
                "by": cfg.by, "gain": cfg.gain, "counts": dict(self.counts),
                "energy_j": self.energy_j, "energy_by_stage_j": dict(self.energy),
                "cycles": self.cycles, "latency_s": self.latency_s,
                "utilisation": dict(self.utilisation)}  # fmt: skip


@dataclass(frozen=True)
class NetworkCost:
    """The sum over a network's products (layers run in sequence on one tile)."""

    layers: tuple

    @property
    def energy_j(self) -> float:
        return math.fsum(layer.energy_j for layer in self.layers)

    @property
    def cycles(self) -> int:
        return sum(layer.cycles for layer in self.layers)

    @property
    def latency_s(self) -> float:
        return math.fsum(layer.latency_s for layer in self.layers)

    def energy_by_stage(self) -> dict:
        return {s: math.fsum(layer.energy[s] for layer in self.layers) for s in STAGES}

    def to_dict(self) -> dict:
        return {"energy_j": self.energy_j, "cycles": self.cycles, "latency_s": self.latency_s,
                "energy_by_stage_j": self.energy_by_stage(),
                "layers": [layer.to_dict() for layer in self.layers]}  # fmt: skip


# The published figures of docs/cost.md (45 nm digital and SRAM; 40/45 nm ADCs).
DEFAULT = CostModel(
    adc_walden_fom_j=35.5e-15,
    adc_schreier_fom_db=184.0,
    dac_energy_1bit_j=0.3255e-12,
    analog_mac_energy_j=0.64e-15,
    digital_energy_per_cell_j=0.2e-12 / 354,
    input_unit_cells=31009,
    input_unit_per_beat=16,
    output_unit_cells=68141,
    output_unit_lanes=4,
    sram_energy_per_bit_j=10e-12 / 64,
    clock_hz=1e9,
    array_settle_cycles=2,
    adc_bits_per_cycle=1,
    adc_share=1,
)

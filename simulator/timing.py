"""Cycle-accurate timing of a whole matrix product on the tile controller ``abfp_tile``.

:func:`schedule` replays, clock by clock, the handshakes of ``rtl/abfp_tile.v`` (its input unit,
controller, weight-scale store and output unit) together with the reference analog array of
docs/rtl_tile.md, and returns the cycle of every output beat, of every handshake on the tile's
ports, the total cycles and each stage's utilisation. Cycle 0 is the cycle in which the
command is offered to the idle tile; a handshake "at cycle c" is one whose valid and ready are
both high in cycle c, so the transfer happens at the rising edge that ends it.

The reference array holds one input vector at a time: it takes a DAC beat when its analog stage
is empty, its sample-and-hold takes the settled result ``conversion_latency`` cycles after the
DAC beat (once the previous conversion has left it), and its ADCs, one per ``adc_share`` output
rows, hand the ``LANES`` codes of the group over ``adc_share`` ADC beats, each beat waiting for
the controller's ready.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from simulator.config import TileConfig

__all__ = ["HANDSHAKES", "STAGES", "ArrayTiming", "Schedule", "schedule"]

# Ports whose handshakes schedule(..., handshakes=True) records, in the kernel's order.
HANDSHAKES = ("command", "x", "vector", "dac", "adc", "rescale", "output")
# Stages whose busy fraction Schedule.utilisation reports, in the kernel's order.
STAGES = ("input", "quantizer", "dac", "array", "adc", "rescale", "output")

_OUTPUT_STAGES = 5  # output-unit pipeline marks S1..S5 before its output register S6
_DEFAULT_BEAT = 16  # abfp_input_unit's default elements per input beat


@dataclass(frozen=True)
class ArrayTiming:
    """Timing of the analog array and its converters (the bench's reference array).

    Attributes
    ----------
    conversion_latency : int
        Cycles from the array accepting a DAC beat to its first ADC beat being valid, >= 2
        (one cycle to register the DAC codes, one to register the ADC codes).
    adc_share : int
        Output rows per ADC (R): each ADC converts R rows in turn, so a group of LANES rows
        arrives in R ADC beats of LANES / R codes. R must divide LANES.
    """

    conversion_latency: int = 2
    adc_share: int = 1

    def __post_init__(self):
        for name, low in (("conversion_latency", 2), ("adc_share", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"ArrayTiming.{name} must be an int >= {low}, got {value!r}")
            object.__setattr__(self, name, int(value))


@dataclass(frozen=True)
class Schedule:
    """The cycle-accurate timing of one matrix product.

    Attributes
    ----------
    rows, k, n_out : int
        The product's shape: ``rows`` input vectors of ``k`` elements, ``n_out`` outputs each.
    tiles, groups, lanes, per_beat : int
        T = ceil(k / n), output-row groups n_out / LANES, LANES, input elements per beat (P).
    array : ArrayTiming
    total_cycles : int
        Cycles from the command (cycle 0) up to and including the last output beat's cycle.
    output_cycles : numpy.ndarray of int64, shape (rows * groups,)
        Cycle of every output beat, in (row, group) order.
    utilisation : dict
        Stage (:data:`STAGES`) to the fraction of ``total_cycles`` it was busy: ``input`` x
        beats taken, ``quantizer`` cycles the input unit's quantizer advanced, ``dac`` DAC beats,
        ``array`` cycles the analog stage held a vector, ``adc`` ADC beats, ``rescale`` beats
        into the output unit, ``output`` output beats.
    handshakes : dict or None
        With ``handshakes=True``: port (:data:`HANDSHAKES`) to the int64 cycles of its
        handshakes in order (``vector``: the input unit's vectors taken by the controller,
        ``rescale``: beats into the output unit; both internal), else None.
    """

    rows: int
    k: int
    n_out: int
    tiles: int
    groups: int
    lanes: int
    per_beat: int
    array: ArrayTiming
    total_cycles: int
    output_cycles: np.ndarray
    utilisation: dict
    handshakes: dict | None = None

    def to_dict(self) -> dict:
        """Plain-data form (lists and numbers) for JSON."""
        out = {
            "rows": self.rows, "k": self.k, "n_out": self.n_out, "tiles": self.tiles,
            "groups": self.groups, "lanes": self.lanes, "per_beat": self.per_beat,
            "conversion_latency": self.array.conversion_latency,
            "adc_share": self.array.adc_share, "total_cycles": self.total_cycles,
            "output_cycles": self.output_cycles.tolist(), "utilisation": dict(self.utilisation),
        }  # fmt: skip
        if self.handshakes is not None:
            out["handshakes"] = {name: c.tolist() for name, c in self.handshakes.items()}
        return out


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"schedule: {name} must be an int >= 1, got {value!r}")
    return int(value)


def _pattern(name: str, pattern) -> np.ndarray:
    if pattern is None:
        return np.ones(0, np.bool_)
    values = np.asarray(pattern)
    if values.ndim != 1 or not np.isin(values, (0, 1)).all():
        raise ValueError(f"schedule: {name} must be a 1-D sequence of 0/1 (or bool) per cycle")
    return values.astype(np.bool_)


def schedule(config: TileConfig, array: ArrayTiming, rows: int, k: int, n_out: int,
             ready=None, *, x_valid=None, lanes: int = 4, per_beat: int | None = None,
             handshakes: bool = False) -> Schedule:  # fmt: skip
    """Cycle-accurate timing of ``y = x @ w.T`` (x: rows x k, w: n_out x k) on ``abfp_tile``.

    Parameters
    ----------
    config : TileConfig
        The tile (its width ``n`` sets T = ceil(k / n) and the input unit's N).
    array : ArrayTiming
        Conversion latency and ADC sharing of the analog array.
    rows, k, n_out : int
        Shape of the product; ``n_out`` must be a multiple of ``lanes``.
    ready : sequence of 0/1, optional
        ``y_ready_i`` in each cycle from cycle 0 (back-pressure on the output port); high
        after its end and when omitted.
    x_valid : sequence of 0/1, optional
        Whether the source offers its next x beat in each cycle (idle cycles); offered after
        its end and when omitted.
    lanes : int
        LANES, output rows per output beat (1..256).
    per_beat : int, optional
        P, input elements per x beat; must divide n. Default: gcd(n, 16).
    handshakes : bool
        Also record the cycle of every handshake (:attr:`Schedule.handshakes`).

    Returns
    -------
    Schedule

    Raises
    ------
    ValueError
        A shape the controller cannot sequence (non-positive sizes, ``n_out`` not a multiple
        of ``lanes``, ``adc_share`` not dividing ``lanes``, ``per_beat`` not dividing n) or a
        pattern that is not 0/1 per cycle.
    """
    if not isinstance(config, TileConfig):
        raise ValueError(f"schedule: config must be a TileConfig, got {type(config).__name__}")
    if not isinstance(array, ArrayTiming):
        raise ValueError(f"schedule: array must be an ArrayTiming, got {type(array).__name__}")
    rows, k, n_out = (_positive_int(n, v) for n, v in (("rows", rows), ("k", k), ("n_out", n_out)))
    lanes = _positive_int("lanes", lanes)
    if lanes > 256:
        raise ValueError(f"schedule: lanes must be in [1, 256], got {lanes}")
    if n_out % lanes:
        raise ValueError(f"schedule: n_out = {n_out} must be a multiple of lanes = {lanes}")
    if lanes % array.adc_share:
        raise ValueError(
            f"schedule: ArrayTiming.adc_share = {array.adc_share} must divide lanes = {lanes}"
        )
    per_beat = math.gcd(config.n, _DEFAULT_BEAT) if per_beat is None else per_beat
    per_beat = _positive_int("per_beat", per_beat)
    if config.n % per_beat:
        raise ValueError(f"schedule: per_beat = {per_beat} must divide n = {config.n}")
    tiles, groups = config.tiles(k), n_out // lanes
    ready_pattern, x_pattern = _pattern("ready", ready), _pattern("x_valid", x_valid)
    total, counts, events = _simulate(
        config.n // per_beat, rows, tiles, groups, array.adc_share, array.conversion_latency,
        x_pattern, ready_pattern, handshakes,
    )  # fmt: skip
    utilisation = {name: float(counts[i]) / total for i, name in enumerate(STAGES)}
    recorded = dict(zip(HANDSHAKES, events, strict=True)) if handshakes else None
    return Schedule(
        rows=rows, k=k, n_out=n_out, tiles=tiles, groups=groups, lanes=lanes,
        per_beat=per_beat, array=array, total_cycles=int(total),
        output_cycles=events[-1].copy(), utilisation=utilisation, handshakes=recorded,
    )  # fmt: skip


def _simulate(beats, rows, tiles, groups, share, latency, x_pattern, ready_pattern, record):
    conversions = rows * groups * tiles
    sizes = np.array([1, rows * tiles * beats, rows * tiles, conversions, conversions * share,
                      conversions, rows * groups])  # fmt: skip
    bound = len(x_pattern) + len(ready_pattern) + int(sizes[1:].sum()) * (latency + share + 8) + 64
    events = [np.zeros(int(s) if record or i == len(sizes) - 1 else 0, np.int64)
              for i, s in enumerate(sizes)]  # fmt: skip
    counts = np.zeros(len(STAGES), np.int64)
    total = _run(beats, rows, tiles, groups, share, latency, x_pattern, ready_pattern, record,
                 bound, counts, *events)  # fmt: skip
    if total < 0:
        raise RuntimeError(f"schedule: the product did not finish within {bound} cycles")
    return total, counts, events


@njit(cache=True)
def _run(beats, rows, tiles, groups, share, latency, x_pattern, ready_pattern, record, bound,
         counts, ev_cmd, ev_x, ev_vec, ev_dac, ev_adc, ev_ou, ev_y):  # fmt: skip
    """One clock per iteration: combinational handshakes from the state, then the edge.

    The statements mirror rtl/abfp_tile.v, rtl/abfp_input_unit.v and rtl/abfp_output_unit.v
    (their ``_d`` logic) and the reference array; returns the total cycles, or -1 past bound.
    """
    n_x, n_y = rows * tiles * beats, rows * groups
    # controller: 0 idle, 1 load, 2 run
    state = 0
    cmd_taken = False
    rows_left = load_j = iss_j = iss_g = ret_j = ret_g = sub = 0
    iss_done = asm_full = False
    # input unit
    in_beat = q_beat = 0
    q_active = iu_valid = False
    # reference array: analog stage and sample-and-hold
    ana_full = sh_full = False
    ana_t = sh_sub = 0
    # output unit: beat marks of S1..S5 and the output register
    ou_valid = np.zeros(_OUTPUT_STAGES, np.bool_)
    ou_last = np.zeros(_OUTPUT_STAGES, np.bool_)
    y_valid = False
    i_x = i_vec = i_dac = i_adc = i_ou = i_y = 0
    for t in range(bound):
        x_offer = x_pattern[t] if t < len(x_pattern) else True
        y_ready = ready_pattern[t] if t < len(ready_pattern) else True
        # ---- combinational handshakes --------------------------------------------------
        cmd_fire = (not cmd_taken) and state == 0
        ou_advance = (not y_valid) or y_ready
        y_fire = y_valid and y_ready
        ou_fire = asm_full and ou_advance
        adc_fire = sh_full and ((not asm_full) or ou_advance)
        dac_fire = state == 2 and (not iss_done) and (not ana_full)
        iu_ready = state == 1
        q_advance = q_active and (q_beat != 0 or (not iu_valid) or iu_ready)
        in_ready = (not q_active) or q_beat > in_beat or (q_beat == in_beat and q_advance)
        x_fire = x_offer and i_x < n_x and in_ready
        load_fire = iu_valid and iu_ready
        # ---- records -------------------------------------------------------------------
        if record:
            if cmd_fire:
                ev_cmd[0] = t
            if x_fire:
                ev_x[i_x] = t
            if load_fire:
                ev_vec[i_vec] = t
            if dac_fire:
                ev_dac[i_dac] = t
            if adc_fire:
                ev_adc[i_adc] = t
            if ou_fire:
                ev_ou[i_ou] = t
        if y_fire:
            ev_y[i_y] = t
        i_x += x_fire
        i_vec += load_fire
        i_dac += dac_fire
        i_adc += adc_fire
        i_ou += ou_fire
        i_y += y_fire
        counts[0] += x_fire
        counts[1] += q_advance
        counts[2] += dac_fire
        counts[3] += ana_full
        counts[4] += adc_fire
        counts[5] += ou_fire
        counts[6] += y_fire
        if i_y == n_y:
            return t + 1
        # ---- rising edge: output unit ----------------------------------------------------
        if ou_advance:
            y_valid = ou_valid[4] and ou_last[4]
            for s in range(_OUTPUT_STAGES - 1, 0, -1):
                ou_valid[s] = ou_valid[s - 1]
                ou_last[s] = ou_last[s - 1]
            ou_valid[0] = asm_full
            ou_last[0] = ret_j == tiles - 1
        # ---- input unit ------------------------------------------------------------------
        iu_valid_next = iu_valid and not iu_ready
        if q_advance:
            if q_beat == beats - 1:
                q_active = False
                q_beat = 0
                iu_valid_next = True
            else:
                q_beat += 1
        if x_fire:
            if in_beat == beats - 1:
                in_beat = 0
                q_active = True
                q_beat = 0
            else:
                in_beat += 1
        iu_valid = iu_valid_next
        # ---- reference array -------------------------------------------------------------
        if adc_fire:
            sh_sub += 1
            if sh_sub == share:
                sh_full = False
                sh_sub = 0
        if ana_full and (not sh_full) and t - ana_t >= latency - 1:
            sh_full = True
            ana_full = False
        if dac_fire:
            ana_full = True
            ana_t = t
        # ---- controller ------------------------------------------------------------------
        if cmd_fire:
            cmd_taken = True
            state = 1
            rows_left = rows
        if load_fire:
            if load_j == tiles - 1:
                load_j = 0
                state = 2
            else:
                load_j += 1
        if dac_fire:
            if iss_j == tiles - 1:
                iss_j = 0
                if iss_g == groups - 1:
                    iss_g = 0
                    iss_done = True
                else:
                    iss_g += 1
            else:
                iss_j += 1
        asm_next = asm_full and not ou_fire
        if adc_fire:
            if sub == share - 1:
                sub = 0
                asm_next = True
            else:
                sub += 1
        asm_full = asm_next
        if ou_fire:
            if ret_j == tiles - 1:
                ret_j = 0
                if ret_g == groups - 1:
                    ret_g = 0
                    iss_done = False
                    if rows_left == 1:
                        state = 0
                    else:
                        rows_left -= 1
                        state = 1
                else:
                    ret_g += 1
            else:
                ret_j += 1
    return -1

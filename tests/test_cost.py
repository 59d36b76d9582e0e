"""simulator.cost: the arithmetic against hand-computed cases, scaling with bits, bad input."""

import ast
import dataclasses
import math
import re
from pathlib import Path

import pytest

from simulator import TileConfig
from simulator.cost import DEFAULT, STAGES, CostError, CostModel, LayerShape

DOC = Path(__file__).resolve().parent.parent / "docs" / "cost.md"

# Round constants so that every figure below can be worked out by hand.
ROUND = dict(
    adc_walden_fom_j=1e-15, adc_schreier_fom_db=200.0, dac_energy_1bit_j=2e-15,
    analog_mac_energy_j=3e-15, digital_energy_per_cell_j=1e-15, input_unit_cells=100,
    input_unit_per_beat=2, output_unit_cells=1000, output_unit_lanes=4,
    sram_energy_per_bit_j=0.5e-15, clock_hz=1e9, array_settle_cycles=2, adc_bits_per_cycle=1,
    adc_share=1,
)  # fmt: skip
TILE = TileConfig(n=4, bx=4, bw=3, by=5, noise="none")
SHAPE = LayerShape("tiny", rows=2, k=5, n_out=6)


def test_layer_energy_by_hand():
    # T = ceil(5 / 4) = 2 tiles, ceil(6 / 4) = 2 groups of LANES = 4, P = gcd(4, 2) = 2 so
    # 4 / 2 = 2 input beats per vector and tile; bf16 scales, inputs and outputs: 16 bits.
    cost = CostModel(**ROUND).layer(TILE, SHAPE)
    assert cost.counts == {
        "dac_conversions": 2 * 2 * 5,  # rows x groups x k = 20
        "macs": 2 * 6 * 5,  # rows x n_out x k = 60
        "adc_conversions": 2 * 6 * 2,  # rows x n_out x T = 24
        "input_unit_beats": 2 * 2 * 2,  # rows x T x n / P = 8
        "output_unit_beats": 2 * 2 * 2,  # rows x groups x T = 8
        "sram_weight_bits": 6 * 5 * 3,  # n_out x k x bw = 90
        "sram_scale_bits": 2 * 6 * 2 * 16,  # rows x n_out x T x 16 = 384
        "sram_activation_bits": 2 * (5 * 16 + 6 * 16),  # 352
    }
    expected_fj = {
        "dac": 20 * 16,  # 4-bit DAC: 2 fJ x 2^3
        "mac": 60 * 3,
        "adc": 24 * 32,  # 5-bit ADC: 1 fJ x 2^5 (the Schreier bound at 200 dB is far below)
        "input_unit": 8 * 100,
        "output_unit": 8 * 1000,
        "sram_weights": 90 * 0.5,
        "sram_scales": 384 * 0.5,
        "sram_activations": 352 * 0.5,
    }
    assert list(cost.energy) == list(STAGES)
    for stage, fj in expected_fj.items():
        assert cost.energy[stage] == pytest.approx(fj * 1e-15, rel=1e-12, abs=0), stage
    assert cost.energy_j == pytest.approx(10481e-15, rel=1e-12, abs=0)  # the sum of the above


def test_latency_is_the_timing_models_cycles_over_the_clock():
    from simulator.timing import ArrayTiming, schedule

    model = CostModel(**ROUND)
    cost = model.layer(TILE, SHAPE)
    # conversion latency = 2 settle cycles + ceil(5 bits / 1 bit per cycle) = 7; the last
    # group's 2 idle lanes pad n_out to 8
    assert model.conversion_latency(5) == 7
    expected = schedule(TILE, ArrayTiming(7, 1), 2, 5, 8, lanes=4, per_beat=2).total_cycles
    assert cost.cycles == expected
    assert cost.latency_s == expected / 1e9
    # one more ADC bit: one more cycle per conversion, so more cycles
    assert model.layer(dataclasses.replace(TILE, by=6), SHAPE).cycles > cost.cycles


def test_adc_energy_scales_with_bits():
    walden = CostModel(**ROUND)
    for bits in range(2, 16):  # Walden regime: exactly twice the energy per bit
        assert walden.adc_energy(bits + 1) == 2 * walden.adc_energy(bits)
    assert walden.adc_energy(8) == 256e-15
    # At 170 dB the Schreier bound 0.5 x 10^((6.02 b + 1.76 - 170) / 10) passes the Walden
    # figure 1 fJ x 2^b between 7 bits (1.23e-13 < 1.28e-13 J) and 8 bits (4.9e-13 > 2.56e-13)
    thermal = CostModel(**{**ROUND, "adc_schreier_fom_db": 170.0})
    assert thermal.adc_energy(2) == 4e-15
    assert thermal.adc_energy(7) == 128e-15
    by_hand = 0.5 * 10 ** ((6.02 * 8 + 1.76 - 170.0) / 10)
    assert thermal.adc_energy(8) == pytest.approx(by_hand, rel=1e-12, abs=0)
    assert thermal.adc_energy(8) > 256e-15
    for bits in range(8, 16):  # 6.02 dB, about four times, per bit
        ratio = thermal.adc_energy(bits + 1) / thermal.adc_energy(bits)
        assert ratio == pytest.approx(10**0.602, rel=1e-12, abs=0)


def test_dac_and_layer_scale_with_bits():
    model = CostModel(**ROUND)
    assert [model.dac_energy(b) for b in (2, 3, 8)] == [4e-15, 8e-15, 256e-15]
    base = model.layer(TILE, SHAPE)
    more_adc = model.layer(dataclasses.replace(TILE, by=6), SHAPE)
    assert more_adc.energy["adc"] == 2 * base.energy["adc"]
    less_dac = model.layer(dataclasses.replace(TILE, bx=3), SHAPE)
    assert less_dac.energy["dac"] == base.energy["dac"] / 2
    more_w = model.layer(dataclasses.replace(TILE, bw=4), SHAPE)
    assert more_w.counts["sram_weight_bits"] == 6 * 5 * 4
    for stage in ("mac", "input_unit", "output_unit", "sram_scales", "sram_activations"):
        assert more_adc.energy[stage] == less_dac.energy[stage] == base.energy[stage]


def test_network_sums_its_layers():
    model = CostModel(**ROUND)
    other = LayerShape("other", rows=3, k=9, n_out=4)
    net = model.network([(SHAPE, TILE), (other, TILE)])
    first, second = model.layer(TILE, SHAPE), model.layer(TILE, other)
    assert net.cycles == first.cycles + second.cycles
    assert net.energy_j == pytest.approx(first.energy_j + second.energy_j, rel=1e-12, abs=0)
    assert net.energy_by_stage()["adc"] == pytest.approx(
        first.energy["adc"] + second.energy["adc"], rel=1e-12, abs=0)
    assert net.to_dict()["layers"][1]["layer"] == "other"


def test_missing_unknown_and_bad_constants():
    partial = dict(ROUND)
    del partial["clock_hz"]
    with pytest.raises(CostError, match=r"\['clock_hz'\] missing .*docs/cost.md"):
        CostModel.from_dict(partial)
    with pytest.raises(CostError, match="unknown cost constant.*'adc_fom'"):
        CostModel.from_dict({**ROUND, "adc_fom": 1.0})
    for name, bad in (("adc_walden_fom_j", 0.0), ("clock_hz", -1.0),
                      ("analog_mac_energy_j", math.nan), ("sram_energy_per_bit_j", "1e-15"),
                      ("output_unit_lanes", 0), ("adc_share", True), ("input_unit_cells", 2.5)):
        with pytest.raises(CostError, match=f"cost constant {name}"):
            CostModel.from_dict({**ROUND, name: bad})
    with pytest.raises(CostError, match="must be a table"):
        CostModel.from_dict([1, 2])
    assert CostModel.from_dict(DEFAULT.to_dict()) == DEFAULT


def test_bad_shapes_bits_and_timing():
    with pytest.raises(CostError, match="layer 'x': rows must be an int >= 1"):
        LayerShape("x", rows=0, k=1, n_out=1)
    with pytest.raises(CostError, match="converter bits must be an int in"):
        DEFAULT.adc_energy(17)
    with pytest.raises(CostError, match="config must be a TileConfig"):
        DEFAULT.layer({"n": 4}, SHAPE)
    with pytest.raises(CostError, match="adc_share = 3 must divide lanes = 4"):
        CostModel(**{**ROUND, "adc_share": 3}).layer(TILE, SHAPE)


def _number(text: str) -> float:
    """The value of a table entry such as ``10e-12 / 64``: numbers, ``*`` and ``/`` only."""
    def value(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return node.value
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.Div)):
            left, right = value(node.left), value(node.right)
            return left * right if isinstance(node.op, ast.Mult) else left / right
        raise ValueError(f"not a number: {text!r}")

    return value(ast.parse(text, mode="eval").body)


def test_docs_list_every_constant_with_its_default():
    text = DOC.read_text()
    rows = dict(re.findall(r"^\| `(\w+)` \| `([^`]+)` \|", text, re.M))
    assert set(rows) == {f.name for f in dataclasses.fields(CostModel)}
    for name, value in DEFAULT.to_dict().items():
        assert _number(rows[name]) == pytest.approx(value, rel=1e-12, abs=0), name

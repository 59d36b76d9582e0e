"""simulator.search: Pareto fronts by hand, shapes of a tiny model, a small search, bad input."""

import json

import numpy as np
import pytest

from simulator import TileConfig
from simulator.cost import DEFAULT, LayerShape
from simulator.nn import LayerPolicy
from simulator.nn.models import EvalData
from simulator.nn.models._common import LoadedModel
from simulator.nn.ops import Float32Ops
from simulator.search import (
    KNOBS,
    BudgetError,
    layer_shapes,
    meets_budget,
    paired_stderr,
    pareto_front,
    search,
)
from simulator.search.__main__ import main


class TinyModel(LoadedModel):
    """conv 3x3 (1 -> 2 channels, padding 1) on 4x4 images, ReLU, flatten, linear 32 -> 4;
    labels are the float32 model's own predictions, so float32 top-1 is 1."""

    name = "tiny"
    layer_names = ["conv", "fc"]

    def __init__(self, samples=40):
        rng = np.random.default_rng(7)
        params = {"conv": rng.standard_normal((2, 1, 3, 3)).astype(np.float32),
                  "fc": rng.standard_normal((4, 32)).astype(np.float32)}  # fmt: skip
        images = rng.standard_normal((samples, 1, 4, 4)).astype(np.float32)
        super().__init__(params, None, images[:8])
        labels = np.argmax(self.forward(Float32Ops(), images), axis=1)
        self._data = EvalData(images, labels, batch_size=samples)

    def forward(self, ops, batch):
        h = ops.conv2d("conv", batch, self._params["conv"], padding=1)
        h = np.maximum(ops.digital(h), 0)
        return ops.linear("fc", h.reshape(len(h), -1), self._params["fc"])


def tiny_model():
    return TinyModel()


def test_pareto_front_by_hand():
    costs = [3.0, 1.0, 2.0, 2.0, 4.0, 1.0, 0.5]
    metrics = [0.9, 0.5, 0.7, 0.6, 0.9, 0.5, 0.1]
    # 6 is cheapest; 1 beats it on metric; 5 repeats 1; 3 loses to 2 at equal cost;
    # 4 costs more than 0 for the same metric
    assert pareto_front(costs, metrics) == [6, 1, 2, 0]
    assert pareto_front([1.0], [0.2]) == [0]
    assert pareto_front([], []) == []
    with pytest.raises(ValueError, match="must be 1-D of one length"):
        pareto_front([1.0, 2.0], [0.5])
    with pytest.raises(ValueError, match="must be finite"):
        pareto_front([1.0, np.nan], [0.5, 0.6])


def test_paired_acceptance_by_hand():
    # 100 samples, float32 right on the first 90; the tile loses samples 0-2 and gains 95:
    # top-1 0.88, a drop of 0.02 with 4 disagreements, d = -1 (x3), +1 (x1), else 0, so
    # mean(d^2) = 0.04, mean(d) = -0.02, standard error sqrt((0.04 - 0.0004) / 100)
    reference = np.arange(100) < 90
    tile = reference.copy()
    tile[:3], tile[95] = False, True
    se = paired_stderr(tile, reference)
    assert se == pytest.approx(np.sqrt(0.0396 / 100), rel=1e-12)
    metric = float(tile.mean())
    # budget 0.05: 0.02 + 1 * 0.0199 = 0.0399 is within it, 0.02 + 2 * 0.0199 = 0.0598 not
    assert meets_budget(metric, se, 0.9, 0.05, z=1.0)
    assert not meets_budget(metric, se, 0.9, 0.05, z=2.0)
    assert meets_budget(metric, se, 0.9, 0.02, z=0.0)  # the measured drop alone: 0.02
    assert not meets_budget(metric, float("nan"), 0.9, 0.019, z=0.0)
    # the unpaired error of a proportion, sqrt(0.88 * 0.12 / 100) = 0.0325, would refuse z=1
    assert not meets_budget(metric, np.sqrt(0.88 * 0.12 / 100), 0.9, 0.05, z=1.0)
    # two seeds are averaged per sample first: reference 1 1 1 0, seeds (1 0 1 0), (1 1 0 1)
    # give d = 0, -0.5, -0.5, +0.5: mean -0.125, mean(d^2) 0.1875
    two = paired_stderr([[1, 0, 1, 0], [1, 1, 0, 1]], [1, 1, 1, 0])
    assert two == pytest.approx(np.sqrt((0.1875 - 0.125**2) / 4), rel=1e-12)
    assert paired_stderr(reference, reference) == 0.0
    with pytest.raises(ValueError, match="must be \\(seeds, samples\\)"):
        paired_stderr([[1, 0]], [1, 0, 1])


def test_layer_shapes_after_lowering():
    model = TinyModel()
    policy = LayerPolicy(TileConfig(n=8)).bind(model.layer_names)
    # conv: 4x4 output positions = 16 rows, K = 1 x 3 x 3 = 9, N = 2; fc: 1 row, 32 -> 4
    assert layer_shapes(model, policy) == [("conv", LayerShape("conv", 16, 9, 2)),
                                           ("fc", LayerShape("fc", 1, 32, 4))]
    assert layer_shapes(model, policy, batch=3)[0][1].rows == 48
    kept = policy.with_rules([{"pattern": "fc", "float32": True}])
    assert [name for name, _ in layer_shapes(model, kept)] == ["conv"]


@pytest.mark.slow
def test_small_search_meets_its_budget():
    model = TinyModel()
    result = search(model, metric="top1", budget=0.1, config=TileConfig(n=8), seeds=(0,),
                    min_bits=6, criterion="layer")  # fmt: skip
    assert result.float32 == 1.0
    assert result.best.metric >= result.target
    assert result.best.energy_j <= result.uniform8.energy_j
    assert result.savings()["energy"] == result.uniform8.energy_j / result.best.energy_j
    assert result.uniform8.bits() == "8/8/8" and result.uniform6.bits() == "6/6/8"
    for name, settings in result.best.layers.items():
        assert all(6 <= settings[k] <= 8 for k in KNOBS), (name, settings)
    # the greedy stops only when every knob still above min_bits was refused one bit lower
    # (it missed the budget or saved nothing), and it accepts only moves within the budget
    refused = {h["move"] for h in result.history if not h["accepted"]}
    for name, settings in result.best.layers.items():
        for knob in KNOBS:
            if settings[knob] > 6:
                assert f"{name}.{knob}={settings[knob] - 1}" in refused, (name, knob)
    accepted = [h for h in result.history if h["accepted"]]
    assert accepted and all(h["metric"] - result.z * h["stderr"] >= result.target
                            for h in accepted)  # fmt: skip
    # the priced cost equals the cost model's sum over the recorded shapes
    policy = LayerPolicy(TileConfig(n=8)).bind(model.layer_names)
    shapes = layer_shapes(model, policy)
    rules = [{"pattern": n, **s} for n, s in result.best.layers.items()]
    priced = DEFAULT.network((shape, policy.with_rules(rules).config(name))
                             for name, shape in shapes)  # fmt: skip
    assert result.best.energy_j == priced.energy_j
    assert result.best.latency_s == priced.latency_s
    front = result.front("energy")
    assert front and all(p in result.points for p in front)


@pytest.mark.slow
def test_dask_search_equals_serial():
    from simulator.sweep.engine import connect, disconnect

    kwargs = dict(metric="top1", budget=0.1, config=TileConfig(n=8), min_bits=7,
                  criterion="layer", validate=16, limit=24)  # fmt: skip
    serial = search(TinyModel(), **kwargs)
    client = connect("local", workers=1)
    try:
        parallel = search(TinyModel(), client=client, **kwargs)
    finally:
        disconnect(client)
    assert parallel.best == serial.best
    assert [p.to_dict() for p in parallel.points] == [p.to_dict() for p in serial.points]
    assert parallel.history == serial.history
    assert parallel.validation == serial.validation
    assert parallel.evaluations >= serial.evaluations


@pytest.mark.slow
def test_budget_no_configuration_meets():
    with pytest.raises(BudgetError, match="no configuration meets the budget") as caught:
        search(TinyModel(), metric="top1", budget=-1.0, config=TileConfig(n=8),
               criterion="layer")  # fmt: skip
    assert caught.value.closest.label in ("uniform 8/8/8", "uniform 6/6/8")
    assert "closest point is" in str(caught.value)


def test_bad_arguments():
    model = TinyModel()
    with pytest.raises(ValueError, match="objective must be one of"):
        search(model, metric="top1", budget=0.1, objective="area")
    with pytest.raises(ValueError, match="has no metric 'accuracy'; its metrics: top1"):
        search(model, metric="accuracy", budget=0.1, config=TileConfig(n=8))
    with pytest.raises(ValueError, match="min_bits must be an int in"):
        search(model, metric="top1", budget=0.1, min_bits=1)
    with pytest.raises(ValueError, match="budget must be a finite number"):
        search(model, metric="top1", budget=float("nan"))
    with pytest.raises(ValueError, match="limit must be an int >= 1"):
        search(model, metric="top1", budget=0.1, limit=0)
    with pytest.raises(ValueError, match="z must be a finite number >= 0"):
        search(model, metric="top1", budget=0.1, z=-1.0)
    with pytest.raises(ValueError, match="'sqnr_db' has not .* give z = 0"):
        search(model, metric="sqnr_db", budget=0.1, config=TileConfig(n=8))


@pytest.mark.slow
def test_cli_writes_json_and_reports(tmp_path, capsys):
    out = tmp_path / "result.json"
    status = main(["--model", "tests.test_search:tiny_model", "--metric", "top1", "--n", "8",
                   "--budget", "0.1", "--min-bits", "7", "--criterion", "layer",
                   "--limit", "24", "--validate", "16", "--json", str(out)])  # fmt: skip
    assert status == 0
    data = json.loads(out.read_text())
    assert data["samples"] == 24 and data["validation"]["samples"] == 16
    v = data["validation"]
    for label, d in v["searched minus"].items():
        assert d["difference"] == pytest.approx(v["searched"] - v[label], abs=1e-12)
        assert d["within_budget"] == meets_budget(v["searched"], d["stderr"], v[label],
                                                  data["budget"], data["z"])  # fmt: skip
    assert set(data["savings_vs_uniform_8"]) == {"energy", "latency"}
    assert "savings against uniform 8/8/8" in capsys.readouterr().out
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize("argv, message", [
    (["--model", "no-such-model"], "unknown model 'no-such-model'"),
    (["--model", "tests.test_search:tiny_model"], "give --metric"),
    (["--model", "fmnist-cnn", "--json", "/no/such/dir/x.json"], "does not exist"),
    (["--model", "tests.test_search:tiny_model", "--metric", "top1", "--n", "8",
      "--criterion", "layer", "--budget", "-1"], "no configuration meets the budget"),
])  # fmt: skip
def test_cli_bad_input_exits_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_cli_missing_cost_constant(tmp_path, capsys):
    constants = DEFAULT.to_dict()
    del constants["adc_walden_fom_j"]
    path = tmp_path / "constants.json"
    path.write_text(json.dumps(constants))
    assert main(["--model", "fmnist-cnn", "--constants", str(path)]) == 2
    assert "['adc_walden_fom_j'] missing" in capsys.readouterr().err


def test_plot_writes_png_and_svg(tmp_path):
    from simulator.search import Point, SearchResult
    from simulator.search.plot import plot

    layers = {"fc": {"bx": 8, "bw": 8, "by": 8, "gain": 4.0}}
    points = [Point("uniform 8/8/8", layers, 0.9, 2e-6, 3e-5),
              Point("uniform 6/6/8", layers, 0.88, 1e-6, 3e-5),
              Point("fc.bx=5", layers, 0.89, 0.5e-6, 2e-5, 0.01)]  # fmt: skip
    result = SearchResult(model="hand", metric_name="top1", objective="energy", float32=0.9,
                          budget=0.02, z=2.0, samples=10, seeds=[0], batch=1, tile={"n": 8},
                          best=points[2], uniform8=points[0], uniform6=points[1],
                          points=points, cost_model=DEFAULT, seconds=0.0,
                          validation={"samples": 20, "float32": 0.9, "uniform 8/8/8": 0.9,
                                      "uniform 6/6/8": 0.85, "searched": 0.85,
                                      "searched minus": {"float32": {"difference": -0.05,
                                                                     "stderr": 0.05}}})
    written = plot(result, tmp_path / "front")
    assert [p.name for p in written] == ["front.png", "front.svg"]
    assert written[0].read_bytes().startswith(b"\x89PNG")
    assert b"<svg" in written[1].read_bytes()[:1000]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["front.png", "front.svg"]

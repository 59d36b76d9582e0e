"""python -m simulator.nn: evaluate a tiny model given as module:function; every bad input."""

import json
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from simulator import TileConfig
from simulator.nn import Float32Ops, LayerPolicy, TileOps, sqnr_db
from simulator.nn.__main__ import main
from simulator.nn.evaluate import write_json

TINY = "tests.test_nn_cli:tiny_model"
SAMPLES = 10


class TinyModel:
    """Two linear layers over 12 features; labels agree with float32 on most samples."""

    name = "tiny"
    layer_names = ["fc1", "fc2"]

    def __init__(self):
        rng = np.random.default_rng(0)
        self.w1 = rng.standard_normal((16, 12)).astype(np.float32)
        self.b1 = rng.standard_normal(16).astype(np.float32)
        self.w2 = rng.standard_normal((3, 16)).astype(np.float32)
        self.x = rng.standard_normal((SAMPLES, 12)).astype(np.float32)
        labels = np.argmax(self.forward(Float32Ops(), self.x), axis=1)
        labels[:3] = (labels[:3] + 1) % 3  # three wrong on purpose
        self.labels = labels

    def forward(self, ops, batch):
        h = np.maximum(ops.digital(ops.linear("fc1", batch, self.w1, self.b1)), 0)
        return ops.linear("fc2", h, self.w2)

    def eval_data(self):
        return SimpleNamespace(inputs=self.x, labels=self.labels, batch_size=4)

    def calibration_batch(self):
        return self.x[:4]

    def metrics(self, outputs, labels, reference_outputs):
        top = np.argmax(outputs, axis=1)
        return {"top1": float(np.mean(top == labels)),
                "agreement": float(np.mean(top == np.argmax(reference_outputs, axis=1))),
                "sqnr_db": sqnr_db(reference_outputs, outputs)}


def tiny_model():
    return TinyModel()


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_evaluate_writes_figures_equal_to_a_direct_run(tmp_path, capsys):
    out_file = tmp_path / "r.json"
    code, out, err = run(capsys, "evaluate", "--model", TINY, "--n", "8", "--bits", "6,6,8",
                         "--noise", "gaussian:0.5", "--gain", "2", "--seeds", "2", "--seed", "5",
                         "--batch-size", "3", "--json", str(out_file))  # fmt: skip
    assert code == 0, err
    data = json.loads(out_file.read_text())
    cfg = TileConfig(n=8, bx=6, bw=6, by=8, gain=2.0, noise="gaussian", noise_amplitude=0.5)
    assert data["config"] == cfg.to_dict()
    assert data["policy"] == LayerPolicy(cfg).to_dict()
    assert set(data["versions"]) == {"python", "numpy", "numba", "abfp-sim"}
    assert data["seeds"] == [5, 6] and data["samples"] == SAMPLES and data["batch_size"] == 3
    model = TinyModel()
    assert data["float32"] == {"top1": 0.7, "agreement": 1.0, "sqnr_db": "inf"}
    # float32 BLAS may round differently for another batch shape: the CLI's batches of 3
    reference = np.concatenate([model.forward(Float32Ops(), model.x[i:i + 3])
                                for i in range(0, SAMPLES, 3)])  # fmt: skip
    for run_ in data["tile"]:
        whole = model.forward(TileOps(cfg, seed=run_["seed"]), model.x)  # one batch, no chunks
        expect = model.metrics(whole, model.labels, reference)
        assert {k: run_[k] for k in expect} == expect
    assert "top1" in out and "float32" in out and "seeds [5, 6]" in out
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_evaluate_with_calibration_stats_and_policy_file(tmp_path, capsys):
    policy = tmp_path / "p.toml"
    policy.write_text('[default]\nn = 4\n\n[[rules]]\npattern = "fc2"\nby = 6\n')
    out_file = tmp_path / "r.json"
    code, out, err = run(capsys, "evaluate", "--model", TINY, "--policy", str(policy), "--gain",
                         "4", "--calibrate", "--stats", "--limit", "6", "--json", str(out_file))
    assert code == 0, err
    data = json.loads(out_file.read_text())
    assert data["samples"] == 6 and data["config"]["n"] == 4 and data["config"]["gain"] == 4.0
    rules = data["policy"]["rules"]
    assert rules[0] == {"pattern": "fc2", "by": 6}
    assert [(r["pattern"], set(r)) for r in rules[1:]] == [("fc1", {"pattern", "gain"}),
                                                           ("fc2", {"pattern", "gain"})]
    calibration = data["calibration"]
    assert set(calibration["gains"]) == {"fc1", "fc2"} and calibration["seconds"] > 0
    assert [row["layer"] for row in data["stats"]] == ["fc1", "fc2"]
    assert "calibration:" in out and "clip_rate" in out


def test_layers_and_models_commands(capsys):
    code, out, _ = run(capsys, "layers", "--model", TINY, "--n", "16")
    assert code == 0 and out.splitlines()[2].split()[:3] == ["fc1", "tile", "16"]
    from simulator.nn.models import MODELS

    code, out, _ = run(capsys, "models")
    assert code == 0 and all(name in out for name in MODELS)


@pytest.mark.parametrize(
    "argv,message",
    [
        (["evaluate", "--model", "no-such-model"], "error: unknown model 'no-such-model'"),
        (["evaluate", "--model", "tests.test_nn_cli:nothing"], "has no callable 'nothing'"),
        (["evaluate", "--model", "no_such_module_xyz:f"], "cannot import 'no_such_module_xyz'"),
        (["evaluate", "--model", TINY, "--bits", "8,8"], "is not bx,bw,by"),
        (["evaluate", "--model", TINY, "--bits", "1,8,8"], "TileConfig.bx must be an int in"),
        (["evaluate", "--model", TINY, "--noise", "pink:1"], "noise kind must be one of"),
        (["evaluate", "--model", TINY, "--noise", "uniform:x"], "amplitude is not a number"),
        (["evaluate", "--model", TINY, "--n", "0"], "'0' must be >= 1"),
        (["evaluate", "--model", TINY, "--gain", "-2"], "TileConfig.gain must be finite and > 0"),
        (["evaluate", "--model", TINY, "--policy", "missing.toml"], "missing.toml: No such file"),
        (["evaluate", "--model", TINY, "--json", "/nonexistent-dir/r.json"],
         "--json /nonexistent-dir/r.json: its directory does not exist"),
        (["evaluate", "--model", "resnet8", "--weights", "w.npz"],
         "model 'resnet8' takes no weights file"),
        (["evaluate", "--model", "fmnist-cnn", "--weights", "/nonexistent/w.npz"],
         "weights file /nonexistent/w.npz does not exist"),
        (["evaluate", "--model", TINY, "--weights", "w.npz"], "not with a weights file"),
        (["evaluate"], "the following arguments are required: --model"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    out, err = capsys.readouterr()
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("policy_text,message", [
    ('[default]\nn = 8\nfoo = 1\n', "unknown TileConfig fields ['foo']"),
    ('[[rules]]\npattern = "fc*"\ngian = 2.0\n', "unknown field(s) ['gian']"),
    ('[[rules]]\npattern = "conv*"\ngain = 2.0\n', "pattern 'conv*' matches no layer"),
])
def test_bad_policy_file_is_an_error_and_nothing_is_written(tmp_path, capsys, policy_text,
                                                            message):  # fmt: skip
    policy = tmp_path / "p.toml"
    policy.write_text(policy_text)
    out_file = tmp_path / "r.json"
    code, _, err = run(capsys, "evaluate", "--model", TINY, "--policy", str(policy), "--json",
                       str(out_file))  # fmt: skip
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not out_file.exists() and [p.name for p in tmp_path.iterdir()] == ["p.toml"]


@pytest.mark.parametrize("command", [[], ["evaluate"], ["layers"], ["models"]])
def test_help_of_every_subcommand(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main(command + ["--help"])
    assert exc.value.code == 0 and "usage: python -m simulator.nn" in capsys.readouterr().out


def test_module_entry_point_runs():
    done = subprocess.run([sys.executable, "-m", "simulator.nn", "evaluate", "--help"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    assert "--calibrate" in done.stdout


def test_write_json_is_atomic_and_plain(tmp_path):
    target = tmp_path / "r.json"
    target.write_text("old")
    write_json(target, {"sqnr": float("inf"), "n": np.int64(3), "x": [np.float32(0.5)]})
    assert json.loads(target.read_text()) == {"sqnr": "inf", "n": 3, "x": [0.5]}
    with pytest.raises(TypeError):
        write_json(target, {"bad": object()})
    with pytest.raises(OSError, match="cannot write .*/missing/r.json: No such file"):
        write_json(tmp_path / "missing" / "r.json", {})
    assert json.loads(target.read_text())["n"] == 3  # the old file survives a failed write
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]

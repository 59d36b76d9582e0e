"""Bad sweep input is one line on stderr and exit status 2, with nothing written or lost; a
sweep file gives the same sweep as the flags."""

import socket
import time

import pytest

from simulator.sweep.__main__ import _parser, main, spec_from
from simulator.sweep.grid import AXES

MODEL = "tests.sweep_model:tiny"
BASE = ["run", "--model", MODEL, "--n", "8", "--gain", "1,4", "--scheduler", "none", "--quiet"]


def _error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def _snapshot(directory):
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


@pytest.fixture
def finished(tmp_path):
    """A finished two-cell sweep and the bytes of its files."""
    out = tmp_path / "done"
    assert main([*BASE, "--out", str(out)]) == 0
    return out, _snapshot(out)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--model", "nosuch"], "unknown model 'nosuch'"),
        (["--n", ""], "empty grid: axis n has no value"),
        (["--gain", "0"], "TileConfig.gain must be finite and > 0"),
        (["--bits", "6,6"], "bits: bad value '6,6'"),
        (["--n", "8,8"], "axis n: value(s) ['8'] given twice"),
        (["--max-cells", "1"], "the sweep has 2 cells (1 model(s) x 1 n x 2 gain x 1 calibrate "
                               "x 1 seed(s)), more than --max-cells 1"),
    ],
)
def test_bad_grid_is_refused_before_anything_is_written(capsys, tmp_path, extra, message):
    out = tmp_path / "out"
    assert message in _error(capsys, [*BASE, *extra, "--out", str(out)])
    assert not out.exists()


def test_unknown_axis_flag_is_a_usage_error(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main([*BASE, "--frob", "1", "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --frob" in capsys.readouterr().err


def test_unknown_axis_or_key_in_a_sweep_file(capsys, tmp_path):
    bad_axis = tmp_path / "axis.toml"
    bad_axis.write_text('models = ["tests.sweep_model:tiny"]\n[grid]\nfrob = [1]\n')
    assert "unknown sweep axis 'frob'" in _error(capsys, ["run", "--file", str(bad_axis),
                                                          "--out", str(tmp_path / "o")])
    bad_key = tmp_path / "key.yaml"
    bad_key.write_text("models: [tests.sweep_model:tiny]\nsamples: 3\n")
    assert "unknown key(s) ['samples']" in _error(capsys, ["run", "--file", str(bad_key),
                                                          "--out", str(tmp_path / "o")])
    empty = tmp_path / "empty.toml"
    empty.write_text('models = ["tests.sweep_model:tiny"]\n[grid]\nn = []\n')
    assert "empty grid: axis n has no value" in _error(capsys, ["run", "--file", str(empty),
                                                               "--out", str(tmp_path / "o")])
    assert not (tmp_path / "o").exists()


def test_unreachable_scheduler_fails_within_the_timeout_naming_it(capsys, tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    argv = [*BASE[:-3], "--scheduler", address, "--connect-timeout", "1", "--out",
            str(tmp_path / "out")]  # fmt: skip
    start = time.perf_counter()
    err = _error(capsys, argv)
    assert time.perf_counter() - start < 15
    assert f"cannot reach the Dask scheduler at {address} within 1 s" in err
    assert not (tmp_path / "out").exists()


def test_resume_refuses_another_sweeps_results_and_keeps_them(capsys, finished):
    out, before = finished
    err = _error(capsys, [*BASE[:4], "16", *BASE[5:], "--out", str(out), "--resume"])
    assert "results of another sweep" in err and str(out / "results.jsonl") in err
    assert _snapshot(out) == before


def test_existing_results_need_resume(capsys, finished):
    out, before = finished
    assert "pass --resume" in _error(capsys, [*BASE, "--out", str(out)])
    assert _snapshot(out) == before
    assert main([*BASE, "--out", str(out), "--resume"]) == 0  # nothing left to run
    assert _snapshot(out) == before


def test_sweep_file_toml_and_yaml_equal_the_flags(tmp_path):
    flags = ["run", "--model", MODEL, "--n", "8", "32", "--gain", "1,2", "--bits", "6,6,8",
             "8,8,8", "--noise", "uniform:1", "gaussian:0.5", "--seeds", "3", "--calibrate",
             "off,on", "--limit", "20", "--out", "x"]  # fmt: skip
    toml = tmp_path / "s.toml"
    toml.write_text(f'models = ["{MODEL}"]\nseeds = 3\ncalibrate = [false, true]\nlimit = 20\n'
                    '[grid]\nn = [8, 32]\ngain = [1.0, 2]\nbits = ["6,6,8", "8,8,8"]\n'
                    'noise = ["uniform:1.0", "gaussian:0.5"]\n')  # fmt: skip
    yaml = tmp_path / "s.yaml"
    yaml.write_text(f"models: [{MODEL}]\nseeds: 3\ncalibrate: [off, on]\nlimit: 20\ngrid:\n"
                    "  n: [8, 32]\n  gain: [1, 2]\n  bits: ['6,6,8', '8,8,8']\n"
                    "  noise: ['uniform:1', 'gaussian:0.5']\n")  # fmt: skip
    parser = _parser()
    digests = {spec_from(parser.parse_args(argv)).digest
               for argv in (flags, ["run", "--file", str(toml), "--out", "x"],
                            ["run", "--file", str(yaml), "--out", "x"])}  # fmt: skip
    assert len(digests) == 1
    spec = spec_from(parser.parse_args(flags))
    assert len(spec.cells()) == 2 * 2 * 2 * 2 * 2 * 3
    # a flag replaces the file's axis
    spec = spec_from(parser.parse_args(["run", "--file", str(toml), "--n", "64", "--out", "x"]))
    assert spec.grid["n"] == ["64"]


def test_every_tileconfig_field_but_the_seed_is_an_axis():
    import dataclasses

    from simulator import TileConfig

    fields = {f.name for f in dataclasses.fields(TileConfig)} - {"seed"}
    assert fields <= set(AXES) and set(AXES) - fields == {"bits"}


def test_a_model_that_cannot_load_writes_nothing(capsys, tmp_path):
    out = tmp_path / "out"
    err = _error(capsys, ["run", "--model", "tests.sweep_model:nosuch", "--scheduler", "none",
                          "--out", str(out)])  # fmt: skip
    assert "has no callable 'nosuch'" in err
    assert not out.exists()

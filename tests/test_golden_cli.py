"""``python -m golden``: destinations, concurrent writers, size guards, Ctrl-C, small n."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

import golden
from golden import directed, store
from golden.__main__ import main
from golden.simulate import UNITS, run_bench
from simulator import TileConfig

ROOT = Path(__file__).resolve().parent.parent
SMALL = ["--n", "8", "--count", "40", "--input-count", "4", "--tile-count", "8", "--quiet"]


@pytest.fixture
def no_generation(monkeypatch):
    """Fail the test if any vector is built: the refusals must come before the work."""

    def built(*args):
        raise AssertionError("vectors were built before the refusal")

    monkeypatch.setattr(store, "_build", built)


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err
    return err


def _golden(*args, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "golden", *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)  # fmt: skip


# ---- destinations ----------------------------------------------------------------------


@pytest.mark.parametrize("force", [False, True])
def test_out_naming_a_file_is_refused_up_front(tmp_path, capsys, no_generation, force):
    target = tmp_path / "vectors"
    target.write_text("keep me\n")
    status = main(["generate", *SMALL, "--out", str(target), *(["--force"] if force else [])])
    assert status == 2
    assert f"{target}: exists and is not a directory" in _one_error_line(capsys)
    assert target.read_text() == "keep me\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vectors"]


def test_an_existing_set_needs_force(tmp_path, capsys, no_generation):
    (tmp_path / "set").mkdir()
    assert main(["generate", *SMALL, "--out", str(tmp_path / "set")]) == 2
    assert "exists; choose a new directory or pass --force" in _one_error_line(capsys)


def test_a_destination_under_a_regular_file_is_refused(tmp_path, capsys, no_generation):
    """Unwritable even for root (the tests run as root, where mode bits do not stop writes)."""
    (tmp_path / "file").write_text("")
    out = tmp_path / "file" / "sub" / "set"
    assert main(["generate", *SMALL, "--out", str(out)]) == 2
    assert f"{out}: {tmp_path / 'file'} is not a directory" in _one_error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_a_destination_the_kernel_refuses_is_refused(capsys, no_generation):
    """/proc takes no new directories, for root either."""
    out = Path("/proc") / f"golden-{uuid.uuid4().hex}" / "set"
    assert main(["generate", *SMALL, "--out", str(out)]) == 2
    assert re.search(rf"{out}: cannot create or write .*: ", _one_error_line(capsys))
    assert not out.parent.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into mode 0555 directories")
def test_a_read_only_directory_is_refused(tmp_path, capsys, no_generation):
    parent = tmp_path / "ro"
    parent.mkdir(mode=0o555)
    assert main(["generate", *SMALL, "--out", str(parent / "set")]) == 2
    assert "cannot create or write" in _one_error_line(capsys)
    assert list(parent.iterdir()) == []


# ---- concurrent writers ----------------------------------------------------------------


def test_a_locked_destination_is_refused(tmp_path, capsys, no_generation):
    out = tmp_path / "set"
    with store._Destination(out, force=False):
        assert main(["generate", *SMALL, "--out", str(out)]) == 2
        assert f"{out}: another run is writing this set" in _one_error_line(capsys)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_two_racing_writers_one_wins_the_other_fails_clearly(tmp_path):
    out = tmp_path / "set"
    args = ["generate", "--n", "8", "--count", "60000", "--input-count", "4", "--tile-count",
            "8", "--quiet", "--out", str(out)]  # fmt: skip
    runs = [_golden(*args) for _ in range(2)]
    results = [(run.wait(timeout=600), *run.communicate()) for run in runs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, _, err in results if code == 2)
    assert loser.count("\n") == 1 and str(out) in loser, loser
    assert "another run is writing this set" in loser or "exists" in loser, loser
    golden.load(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]


# ---- size guard and Ctrl-C -------------------------------------------------------------


def test_a_set_that_cannot_fit_in_memory_is_refused_with_the_figures(tmp_path, capsys,
                                                                     no_generation):  # fmt: skip
    start = time.monotonic()
    status = main(["generate", "--input-count", str(1 << 24), "--count", "10", "--tile-count",
                   "10", "--out", str(tmp_path / "set")])  # fmt: skip
    assert status == 1 and time.monotonic() - start < 30
    err = _one_error_line(capsys)
    figures = re.search(r"needs about ([\d.e+]+) GB of memory .*; ([\d.e+]+) GB is", err)
    need, have = figures.groups()
    assert float(need) > float(have)
    # 2**24 vectors of 128 elements cannot take less than their 2-byte input elements.
    assert float(need) * 1e9 > (1 << 24) * 128 * 2
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_with_status_130(tmp_path):
    parent = tmp_path / "out"
    parent.mkdir()
    run = _golden("generate", "--n", "8", "--count", "2000000", "--input-count", "4",
                  "--tile-count", "8", "--kind-count", "tile_ctrl=8", "--quiet",
                  "--out", str(parent / "set"))  # fmt: skip
    deadline = time.monotonic() + 300
    while not any(p.name.startswith(".set.tmp-") for p in parent.iterdir()):
        assert run.poll() is None and time.monotonic() < deadline, run.communicate()
        time.sleep(0.1)
    time.sleep(1.0)  # into the generation
    run.send_signal(signal.SIGINT)
    code = run.wait(timeout=120)
    _, err = run.communicate()
    assert code == 130, err
    assert err == "interrupted; nothing was written\n", err
    assert list(parent.iterdir()) == []


# ---- every n ---------------------------------------------------------------------------


def test_every_kind_holds_the_shared_directed_cases(tmp_path):
    vset = golden.load(store.generate(TileConfig(n=8), tmp_path / "s", count=10, input_count=3,
                                      tile_count=4, progress=False))  # fmt: skip
    rng = np.random.default_rng(0)
    want = ["random", *(name for name, _ in directed.input_cases(TileConfig(n=8), rng))]
    assert list(vset.manifest["units"]["input"]["cases"]) == sorted(want)
    out_names = [name for name, _ in directed.output_cases(TileConfig(n=8), rng, 4)]
    assert set(vset.manifest["units"]["output"]["cases"]) == {"random", *out_names}


@pytest.mark.hdl
@pytest.mark.parametrize("n", [1, 2, 3])
def test_small_n_sets_generate_and_pass_on_icarus(tmp_path, n):
    out = tmp_path / "set"
    assert main(["generate", "--n", str(n), "--count", "60", "--input-count", "10",
                 "--tile-count", "20", "--quiet", "--out", str(out)]) == 0  # fmt: skip
    vset = golden.load(out)
    assert vset.manifest["hdl_parameters"]["input"]["N"] == n
    for unit in UNITS:
        result = run_bench(vset, unit, "icarus", stall_seed=3, stall_pct=25)
        assert result.ok, result.output[-3000:]


def test_counts_by_kind_name_override_and_unknown_kinds_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"unknown kinds \['controller'\]"):
        store.generate(TileConfig(n=4), tmp_path / "a", counts={"controller": 3})
    assert list(tmp_path.iterdir()) == []
    out = store.generate(TileConfig(n=4), tmp_path / "b", count=9, counts={"input": 2},
                         progress=False)  # fmt: skip
    counts = golden.load(out).manifest["generator"]["counts"]
    assert counts == {"input": 2, "output": 9, "tile": 9, "tile_ctrl": 9}


def test_kind_count_sets_one_kind_by_name_on_the_command_line(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["generate", "--n", "4", "--count", "5", "--kind-count", "tile_ctrl=3",
                 "--quiet", "--out", str(out)]) == 0  # fmt: skip
    assert golden.load(out).manifest["generator"]["counts"] == {
        "input": 5, "output": 5, "tile": 5, "tile_ctrl": 3}
    assert main(["generate", "--n", "4", "--kind-count", "controller=3", "--quiet",
                 "--out", str(tmp_path / "t")]) == 1  # fmt: skip
    assert "unknown kinds ['controller']" in _one_error_line(capsys)
    with pytest.raises(SystemExit):
        main(["generate", "--kind-count", "tile_ctrl", "--out", str(tmp_path / "u")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]

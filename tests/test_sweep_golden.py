"""``python -m golden check`` over many sets or seeds: the bench runs as tasks of the sweep
engine, one combined pass/fail summary; a single SET behaves as before."""

import shutil
import socket

import numpy as np
import pytest

from golden import store
from golden.__main__ import main
from tests.test_golden import REFERENCE, _flip_bit, _rehash


def _summary(capsys) -> str:
    return capsys.readouterr().out.strip().splitlines()[-1]


@pytest.mark.hdl
def test_seed_range_generates_and_checks_every_set(capsys, tmp_path):
    seed_sets = tmp_path
    argv = ["check", "--seeds", "0:1", "--count", "40", "--work", str(seed_sets),
            "--unit", "output", "--scheduler", "none"]  # fmt: skip
    assert main(argv) == 0
    assert _summary(capsys) == "2 benches on 2 sets (here): 2 passed, 0 failed: ok"
    assert {p.name for p in seed_sets.iterdir()} == {"seed-0", "seed-1"}
    assert store.load(seed_sets / "seed-1").manifest["generator"]["seed"] == 1


@pytest.mark.hdl
@pytest.mark.slow
def test_sets_on_a_local_cluster_with_one_failing_bench(capsys, tmp_path):
    """A set whose expected output has a flipped bit fails its bench; the summary counts it and
    the exit status is 1, the other sets still pass."""
    bad = tmp_path / "bad"
    shutil.copytree(REFERENCE, bad)
    fname = "output_expected.hex"
    lines = (bad / fname).read_bytes().split()
    width = store.read_manifest(bad)["files"][fname]["layout"]["width"]
    _flip_bit(bad / fname, int(np.random.default_rng(3).integers(len(lines))), width - 1)
    _rehash(bad, fname)
    argv = ["check", "--sets", str(REFERENCE), str(bad), "--unit", "output",
            "--scheduler", "local", "--workers", "1"]  # fmt: skip
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1] == ("2 benches on 2 sets (on local): 1 passed, 1 failed: "
                                            "FAILED")  # fmt: skip
    assert f"{bad} icarus    output" in out and "FAILED" in out


def test_check_needs_exactly_one_source():
    with pytest.raises(SystemExit, match="give one of SET, --sets DIR... or --seeds"):
        main(["check", str(REFERENCE), "--sets", str(REFERENCE)])
    with pytest.raises(SystemExit, match="give one of SET"):
        main(["check"])


def test_bad_seed_range_and_unreachable_scheduler(capsys):
    assert main(["check", "--seeds", "3:1"]) == 1
    assert "need 0 <= FIRST <= LAST" in capsys.readouterr().err
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    assert main(["check", "--sets", str(REFERENCE), "--scheduler", address,
                 "--connect-timeout", "1"]) == 2  # fmt: skip
    assert f"cannot reach the Dask scheduler at {address}" in capsys.readouterr().err

"""The ``tile_ctrl`` vector kind: cycle stamps that any simulator can check.

The reference set's ``tile_ctrl`` vectors pass on both simulators through
``tests/test_golden.py`` (which runs every registered kind); here, a flipped bit of one output's
cycle stamp, or of one DAC beat's, must fail exactly that transaction on the bench.
"""

from __future__ import annotations

import shutil

import pytest

import golden
from golden import store
from golden.simulate import run_bench
from tests.test_golden import REFERENCE, _flip_bit, _rehash

CYCLE_BIT = 3  # a bit of the 32-bit stamp, which sits in the line's top bits


@pytest.mark.hdl
@pytest.mark.parametrize(
    ("fname", "line", "report"),
    [("tile_ctrl_expected.hex", 11, "FAIL output 11:"),
     ("tile_ctrl_conversions.hex", 40, "FAIL conversion 40:")],
)  # fmt: skip
def test_a_wrong_cycle_stamp_fails_exactly_that_transaction(tmp_path, fname, line, report):
    copy = tmp_path / "set"
    shutil.copytree(REFERENCE, copy)
    width = store.read_manifest(copy)["files"][fname]["layout"]["width"]
    _flip_bit(copy / fname, line, width - 32 + CYCLE_BIT)
    _rehash(copy, fname)
    result = run_bench(golden.load(copy), "tile_ctrl", "icarus")
    assert result.returncode != 0
    assert result.failed == 1, result.output[-2000:]
    assert report in result.output and "cycle" in result.output, result.output[-2000:]

"""The paper's trend on its Appendix A workload: large tiles need gain, small tiles do not."""

from itertools import pairwise

import pytest

from simulator import TileConfig
from tests.paper_table import appendix_a_workload, relative_error


@pytest.fixture(scope="module")
def workload():
    return appendix_a_workload(rows=100, seed=1)


def paper_config(n, gain):
    return TileConfig(n=n, bx=8, bw=8, by=8, gain=gain, noise="uniform", noise_amplitude=1.0)


def test_error_at_n128_falls_as_gain_rises(workload):
    x, w = workload
    errors = [relative_error(x, w, paper_config(128, gain)) for gain in (1, 2, 4, 8)]
    assert all(later < earlier for earlier, later in pairwise(errors)), errors


def test_small_tiles_beat_large_tiles_at_unit_gain(workload):
    x, w = workload
    assert relative_error(x, w, paper_config(8, 1)) < relative_error(x, w, paper_config(128, 1))

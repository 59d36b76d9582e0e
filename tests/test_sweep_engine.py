"""Sweeps on Dask equal the serial run bit for bit, whatever the workers; a killed worker loses
and duplicates no row; an interrupted sweep resumes where it stopped."""

import json
import os
import signal

import pytest

pytest.importorskip("distributed")

from simulator.sweep import engine  # noqa: E402
from simulator.sweep.__main__ import main  # noqa: E402
from simulator.sweep.results import Results, read_rows  # noqa: E402
from simulator.sweep.spec import SweepSpec  # noqa: E402

MODEL = "tests.sweep_model:tiny"
GRID = ["--model", MODEL, "--n", "8,16", "--gain", "1,4", "--bits", "6,6,8", "--seeds", "2",
        "--quiet"]  # fmt: skip


def _cluster(workers: int):
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=None)  # fmt: skip
    client = Client(cluster)
    return cluster, client


@pytest.fixture(scope="module")
def clusters():
    """A cluster of one worker and one of two, shared by this module (workers start slowly)."""
    made = {w: _cluster(w) for w in (1, 2)}
    yield {w: cluster for w, (cluster, _) in made.items()}
    for cluster, client in made.values():
        client.close()
        cluster.close()


def _rows(out) -> dict:
    """Rows by cell key, without the timing (the only field allowed to differ between runs)."""
    _, rows = read_rows(out)
    keys = [r["key"] for r in rows]
    assert len(keys) == len(set(keys)), "a cell appears twice"
    return {r["key"]: {k: v for k, v in r.items() if k != "seconds"} for r in rows}


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    out = tmp_path_factory.mktemp("serial")
    assert main(["run", *GRID, "--scheduler", "none", "--out", str(out)]) == 0
    return _rows(out)


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_dask_rows_equal_serial_rows_bit_for_bit(clusters, serial, tmp_path, workers):
    address = clusters[workers].scheduler_address
    assert main(["run", *GRID, "--scheduler", address, "--out", str(tmp_path)]) == 0
    rows = _rows(tmp_path)
    assert len(rows) == 8
    # json text equality: every float's bits, every NaN/inf alike
    assert json.dumps(rows, sort_keys=True) == json.dumps(serial, sort_keys=True)


def test_scheduler_from_option_then_environment_then_local(monkeypatch):
    monkeypatch.delenv(engine.ENV_SCHEDULER, raising=False)
    assert engine.scheduler_address(None) == "local"
    monkeypatch.setenv(engine.ENV_SCHEDULER, "tcp://10.0.0.1:8786")
    assert engine.scheduler_address(None) == "tcp://10.0.0.1:8786"
    assert engine.scheduler_address("none") == "none"


@pytest.mark.slow
def test_killed_worker_loses_and_duplicates_no_row(clusters, serial, tmp_path):
    """SIGKILL a busy worker process after the first row: its cells are rescheduled, the file
    holds every cell once and equal to the serial run."""
    from distributed import Client

    spec = SweepSpec([MODEL], {"n": ["8", "16"], "gain": ["1", "4"], "bits": ["6,6,8"]},
                     seeds=2)  # fmt: skip
    header = {"digest": spec.digest, "spec": spec.to_dict(), "version": "test"}
    client = Client(clusters[2].scheduler_address)
    pids = client.run(os.getpid)
    killed = []

    def kill_busy_worker():
        busy = [w for w, keys in client.processing().items() if keys]
        if busy:
            os.kill(pids[busy[0]], signal.SIGKILL)
            killed.append(busy[0])

    prepared = {MODEL: engine.prepare(MODEL, spec)}
    with Results(tmp_path, header, list(spec.grid), resume=False) as results:

        def on_row(row):
            results.append(row)
            if not killed:
                kill_busy_worker()

        engine.run_dask(client, prepared, spec.cells(), spec, on_row)
    client.close()
    assert killed, "no worker was busy when the first row came back"
    assert _rows(tmp_path) == serial


def test_interrupted_sweep_resumes_where_it_stopped(serial, tmp_path, monkeypatch):
    """Ctrl-C after three cells: the file holds them whole; --resume runs only the other five
    and the rows equal an uninterrupted run's. A line cut short by a crash is redone."""
    calls = []
    real = engine.run_cell

    def interrupted(*args):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(args[1].key)
        return real(*args)

    monkeypatch.setattr(engine, "run_cell", interrupted)
    argv = ["run", *GRID, "--scheduler", "none", "--out", str(tmp_path)]
    assert main(argv) == 130
    assert list(_rows(tmp_path)) == calls
    monkeypatch.setattr(engine, "run_cell", real)
    jsonl = tmp_path / "results.jsonl"
    with jsonl.open("a") as f:  # a torn last row, as a crash mid-write would leave
        f.write('{"record": "cell", "key": "tests.sweep')
    ran = []
    monkeypatch.setattr(engine, "run_cell", lambda *a: ran.append(a[1].key) or real(*a))
    assert main([*argv, "--resume"]) == 0
    assert sorted(ran) == sorted(set(serial) - set(calls))
    assert _rows(tmp_path) == serial
    csv_lines = (tmp_path / "results.csv").read_text().splitlines()
    assert len(csv_lines) == 1 + len(serial)

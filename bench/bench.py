"""Benchmark of the golden model's fast path against the float32 product of the same shape.

For each workload, in one process: the float32 NumPy product ``x @ w.T``, ``abfp_linear``
(with the dot products that ``ABFP_GEMM`` picks by default, or the product a row forces:
inline, int8 or blas; a forced product that cannot run here gives a row saying why)
(weights converted once with ``quantize_weights``, as the hardware holds them; one row also
times raw weights) and, on a tiny shape, the pure-Python reference ``tests/reference.py``.
Each time is the median of several runs, taken in three blocks that alternate between the
float32 product and ``abfp_linear``, each block after a pause and a warm-up. The extra memory
of one ``abfp_linear`` call (beyond its inputs and output) is measured in a fresh subprocess
per workload, two ways: tracemalloc's peak (NumPy allocations; arrays that numba allocates inside
a kernel are not traced) and the growth of the peak resident set (VmHWM, reset through
/proc/self/clear_refs, with glibc's mmap threshold fixed so freed buffers leave the process).
A last fresh process times the import and the first call on the headline's cached kernels.

Usage: ``python bench/bench.py [--quick] [--json PATH] [--repeats R]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numba
import numpy as np
import threadpoolctl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulator import TileConfig, _kernels, abfp_linear, quantize_weights  # noqa: E402
from simulator import noise as noise_of  # noqa: E402

HEADLINE = dict(n=128, bx=8, bw=8, by=8, gain=8.0, noise="uniform")
# 7-bit weights: the int8 product is exact for them even where the CPU's int8 kernels add
# pairs of products in saturating 16-bit arithmetic (AVX2 without VNNI), unlike 8/8.
SEVEN_BIT_W = {**HEADLINE, "bw": 7}


def workloads(quick: bool) -> list[dict]:
    """(name, B, K, N, configuration, threads) of every row of the table."""
    full = 256 if quick else 1024
    rows = [
        dict(name="headline", b=full, k=full, n_out=full, cfg=HEADLINE),
        dict(name="headline, raw w", b=full, k=full, n_out=full, cfg=HEADLINE, raw_w=True),
        dict(name="headline", b=full, k=full, n_out=full, cfg=HEADLINE, threads=1),
        dict(name="headline", b=full, k=full, n_out=full, cfg=HEADLINE, product="int8"),
        dict(name="headline", b=full, k=full, n_out=full, cfg=HEADLINE, product="blas"),
        dict(name="bw=7", b=full, k=full, n_out=full, cfg=SEVEN_BIT_W),
        dict(name="bw=7", b=full, k=full, n_out=full, cfg=SEVEN_BIT_W, product="int8"),
        dict(name="bw=7", b=full, k=full, n_out=full, cfg=SEVEN_BIT_W, product="blas"),
        dict(name="n=32", b=full, k=full, n_out=full, cfg={**HEADLINE, "n": 32}),
        dict(name="n=32", b=full, k=full, n_out=full, cfg={**HEADLINE, "n": 32}, product="inline"),
        dict(name="n=32", b=full, k=full, n_out=full, cfg={**HEADLINE, "n": 32}, product="blas"),
        dict(name="n=8", b=full, k=full, n_out=full, cfg={**HEADLINE, "n": 8}),
        dict(name="n=8", b=full, k=full, n_out=full, cfg={**HEADLINE, "n": 8}, product="inline"),
        dict(name="n=8", b=full, k=full, n_out=full, cfg={**HEADLINE, "n": 8}, product="blas"),
        dict(name="noise off", b=full, k=full, n_out=full, cfg={**HEADLINE, "noise": "none"}),
        dict(
            name="gaussian noise", b=full, k=full, n_out=full, cfg={**HEADLINE, "noise": "gaussian"}
        ),  # fmt: skip
        dict(name="paper App. A", b=400, k=768, n_out=768, cfg=HEADLINE),
        dict(name="BERT-Base FFN", b=512, k=768, n_out=3072, cfg=HEADLINE),
        dict(name="tiny (with reference)", b=4, k=256, n_out=8, cfg=HEADLINE, reference=True),
    ]
    k_series = [256, 1024] if quick else [256, 512, 1024, 2048, 4096, 8192]
    b_series = [64, 256] if quick else [64, 256, 1024, 4096]
    rows += [dict(name="K series", b=512, k=k, n_out=512, cfg=HEADLINE) for k in k_series]
    rows += [dict(name="B series", b=b, k=1024, n_out=1024, cfg=HEADLINE) for b in b_series]
    return rows


def blas_libraries() -> list[dict]:
    """Every BLAS loaded in this process (numpy's for the float32 product, scipy's for the
    kernels' dot products), as threadpoolctl reports them: file, version, kernel, threads."""
    keep = ("internal_api", "version", "architecture", "threading_layer", "num_threads")
    return [
        {"file": Path(lib["filepath"]).name, **{k: lib.get(k) for k in keep}}
        for lib in threadpoolctl.threadpool_info()
        if lib["user_api"] == "blas"
    ]


def blas_threads() -> int:
    return max((lib["num_threads"] for lib in blas_libraries()), default=0)


def machine_info() -> dict:
    info = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "numba_threads": numba.get_num_threads(),
        "cpu": _lscpu(),
        "env": {
            k: os.environ[k]
            for k in (
                "OPENBLAS_NUM_THREADS",
                "OPENBLAS_CORETYPE",
                "OMP_NUM_THREADS",
                "NUMBA_NUM_THREADS",
                "NUMBA_THREADING_LAYER",
            )  # fmt: skip
            if k in os.environ
        },
    }
    try:
        blas_dep = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info["blas"] = {k: blas_dep.get(k) for k in ("name", "version")}
    except (TypeError, KeyError):
        info["blas"] = {}
    info["blas"]["loaded"] = blas_libraries()
    return info


def _lscpu() -> dict:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return {"machine": platform.machine()}
    keep = ("Model name", "CPU(s)", "Thread(s) per core", "L2 cache", "L3 cache")
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    return {k: fields[k].strip() for k in keep if k in fields}


def loadavg() -> list[float]:
    with open("/proc/loadavg") as f:
        return [float(v) for v in f.read().split()[:3]]


# Idle time before each measurement: after a call, OpenBLAS's worker threads spin for about
# 0.1 s (its THREAD_TIMEOUT) and OpenMP's for a while too, competing on few cores with
# whatever runs next; the pause lets the previous measurement's threads go to sleep.
_SETTLE_S = 0.3


def timed_runs(fn, runs: int) -> list[float]:
    time.sleep(_SETTLE_S)
    fn()  # warm-up: compiles or loads kernels, faults pages in
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def median_times(fns, repeats: int, rounds: int = 3) -> list[float]:
    """Median time of each function over ``repeats`` runs, taken in ``rounds`` alternating
    blocks so that a slow spell of a shared machine falls on every function alike."""
    runs = -(-repeats // rounds)
    times = [[] for _ in fns]
    for _ in range(rounds):
        for fn, t in zip(fns, times, strict=True):
            t += timed_runs(fn, runs)
    return [float(np.median(t)) for t in times]


def operands(spec):
    rng = np.random.default_rng(1234)
    x = rng.standard_normal((spec["b"], spec["k"])).astype(np.float32)
    w = (rng.standard_normal((spec["n_out"], spec["k"])) / np.sqrt(spec["k"])).astype(np.float32)
    return x, w


@contextlib.contextmanager
def forced_product(spec):
    """``ABFP_GEMM`` set to the workload's product (``auto`` unless it names one)."""
    saved = os.environ.get("ABFP_GEMM")
    os.environ["ABFP_GEMM"] = spec.get("product", "auto")
    try:
        yield
    finally:
        if saved is None:
            del os.environ["ABFP_GEMM"]
        else:
            os.environ["ABFP_GEMM"] = saved


def time_workload(spec, repeats: int) -> dict:
    """The row of one workload; a product that cannot run here gives a row with its reason."""
    with forced_product(spec):
        try:
            return _time_workload(spec, repeats)
        except RuntimeError as error:  # ABFP_GEMM=int8 where the int8 product is not exact
            shape = [spec["b"], spec["k"], spec["n_out"]]
            config = TileConfig(**spec["cfg"]).to_dict()
            return {"name": spec["name"], "shape": shape, "config": config, "skipped": str(error)}


def _time_workload(spec, repeats: int) -> dict:
    cfg = TileConfig(**spec["cfg"])
    product = _kernels.product_path(cfg.n, cfg.mx, cfg.mw)
    x, w = operands(spec)
    weights = w if spec.get("raw_w") else quantize_weights(w, cfg)
    threads = spec.get("threads")
    saved = numba.get_num_threads()
    with threadpoolctl.threadpool_limits(limits=threads, user_api="blas"):
        if threads:
            numba.set_num_threads(threads)
        try:
            t_f32, t_abfp = median_times(
                [lambda: x @ w.T, lambda: abfp_linear(x, weights, cfg)], repeats
            )
            used = (numba.get_num_threads(), blas_threads())
        finally:
            numba.set_num_threads(saved)
    row = {
        "name": spec["name"],
        "shape": [spec["b"], spec["k"], spec["n_out"]],
        "config": cfg.to_dict(),
        "weights": "raw" if spec.get("raw_w") else "quantized",
        "product": product,
        "numba_threads": used[0],
        "blas_threads": used[1],
        "f32_s": t_f32,
        "abfp_s": t_abfp,
        "ratio": t_abfp / t_f32,
        "mac_per_s": spec["b"] * spec["k"] * spec["n_out"] / t_abfp,
        "reference_s": None,
    }
    if spec.get("reference"):
        row.update(time_reference(x, w, cfg))
    return row


def time_reference(x, w, cfg) -> dict:
    """The Fraction reference on the same operands; whether it equals abfp_linear bit for bit."""
    try:
        sys.path.insert(0, str(ROOT / "tests"))
        import reference
    except ImportError:
        return {"reference_note": "tests/reference.py not available"}
    e = noise_of((x.shape[0], w.shape[0], cfg.tiles(x.shape[1])), cfg)
    t0 = time.perf_counter()
    ref = reference.forward(x, w, cfg, noise=e)
    elapsed = time.perf_counter() - t0
    y = abfp_linear(x, w, cfg)
    same = np.array_equal(
        np.asarray(ref.y, np.float32).view(np.uint32), np.asarray(y, np.float32).view(np.uint32)
    )
    return {"reference_s": elapsed, "reference_bit_equal": bool(same)}


# ---- memory, in a fresh subprocess per workload ----------------------------------------------


def _vm_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure_memory_here(spec) -> dict:
    """Run in the subprocess: extra bytes of one abfp_linear call beyond inputs and output."""
    cfg = TileConfig(**spec["cfg"])
    x, w = operands(spec)
    weights = w if spec.get("raw_w") else quantize_weights(w, cfg)
    if spec.get("threads"):
        numba.set_num_threads(spec["threads"])
    abfp_linear(x[:8], weights, cfg)  # loads the kernels and starts the thread pool
    out_bytes = spec["b"] * spec["n_out"] * 4
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current resident set
    rss0 = _vm_kib("VmRSS")
    tracemalloc.start()
    y = abfp_linear(x, weights, cfg)
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    hwm = _vm_kib("VmHWM")
    assert y.nbytes == out_bytes
    return {
        "output_bytes": out_bytes,
        "extra_traced_bytes": traced_peak - out_bytes,
        "extra_rss_bytes": (hwm - rss0) * 1024 - out_bytes,
    }


def measure_memory(spec) -> dict:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="65536",
               ABFP_GEMM=spec.get("product", "auto"))  # fmt: skip
    proc = subprocess.run(
        [sys.executable, __file__, "--memory-of", json.dumps(spec)],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    if proc.returncode:
        return {"memory_error": proc.stderr.strip().splitlines()[-1:]}
    return json.loads(proc.stdout)


# ---- a second process: import and first call on cached kernels -----------------------------

_FIRST_CALL = """
import time
t0 = time.perf_counter()
import numpy as np
from simulator import TileConfig, abfp_linear
t1 = time.perf_counter()
rng = np.random.default_rng(0)
x = rng.standard_normal((64, 1024)).astype(np.float32)
w = rng.standard_normal((1024, 1024)).astype(np.float32)
abfp_linear(x, w, TileConfig(**{cfg}))
print(t1 - t0, time.perf_counter() - t1)
"""


def second_process(cfg) -> dict:
    """Seconds that a fresh process spends importing ``simulator`` and on its first
    ``abfp_linear`` (64 x 1024 inputs, raw 1024 x 1024 weights) once this process has
    compiled and cached the kernels of ``cfg``: no compile, only loading."""
    proc = subprocess.run(
        [sys.executable, "-c", _FIRST_CALL.format(cfg=repr(cfg))],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    if proc.returncode:
        return {"error": proc.stderr.strip().splitlines()[-1:]}
    import_s, first_call_s = (float(v) for v in proc.stdout.split())
    return {"import_s": import_s, "first_call_s": first_call_s}


# ---- report -----------------------------------------------------------------------------------


def _fmt_ms(seconds):
    return "-" if seconds is None else f"{seconds * 1e3:.1f}"


def table(rows) -> str:
    head = (
        "| workload | B x K x N | n | noise | product | threads | f32 ms | abfp ms | ratio "
        "| GMAC/s | reference ms | extra MB (traced / RSS) | extra / output |"
    )
    lines = [head, "|" + "---|" * 13]
    for r in rows:
        cfg = r["config"]
        if "skipped" in r:
            shape = " x ".join(map(str, r["shape"]))
            lines.append(f"| {r['name']} | {shape} | {cfg['n']} | {cfg['noise']} | - "
                         f"| not run: {r['skipped']} |" + " |" * 7)  # fmt: skip
            continue
        mem = "-"
        per_out = "-"
        if "extra_traced_bytes" in r:
            mem = f"{r['extra_traced_bytes'] / 2**20:.1f} / {r['extra_rss_bytes'] / 2**20:.1f}"
            worst = max(r["extra_traced_bytes"], r["extra_rss_bytes"])
            per_out = f"{worst / r['output_bytes']:.2f}"
        ref = _fmt_ms(r.get("reference_s"))
        if "reference_bit_equal" in r:
            ref += " (bit-equal)" if r["reference_bit_equal"] else " (DIFFERS)"
        threads = f"{r['numba_threads']}/{r['blas_threads']}"
        name = r["name"] + (" (raw w)" if r["weights"] == "raw" and "raw" not in r["name"] else "")
        lines.append(
            f"| {name} | {' x '.join(map(str, r['shape']))} | {cfg['n']} | {cfg['noise']} "
            f"| {r['product']} | {threads} | {_fmt_ms(r['f32_s'])} | {_fmt_ms(r['abfp_s'])} "
            f"| {r['ratio']:.2f} | {r['mac_per_s'] / 1e9:.2f} | {ref} | {mem} | {per_out} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small shapes, few repeats")
    parser.add_argument("--json", default=str(ROOT / "bench" / "results.json"),
                        help="where to write the figures (default bench/results.json)")  # fmt: skip
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per figure")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    parser.add_argument("--memory-of", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_of:
        print(json.dumps(measure_memory_here(json.loads(args.memory_of))))
        return 0
    repeats = args.repeats or (3 if args.quick else 9)
    info = machine_info()
    info["load_before"] = loadavg()
    print(f"BLAS: {info['blas']}")
    print(f"CPU: {info['cpu']}; load average {info['load_before']}")
    print("Note: OPENBLAS_CORETYPE, where set, picks another OpenBLAS kernel and changes the "
          "float32 baseline.\n")  # fmt: skip
    rows = []
    for spec in workloads(args.quick):
        row = time_workload(spec, repeats)
        if "skipped" not in row and not args.no_memory:
            row.update(measure_memory(spec))
        rows.append(row)
        done = f"ratio {row['ratio']:.2f}" if "skipped" not in row else row["skipped"]
        print(f"  {row['name']} {row['shape']}: {done}", flush=True)
    info["second_process"] = second_process(HEADLINE)
    info["load_after"] = loadavg()
    info["numba_threading_layer"] = numba.threading_layer()
    print(f"\nnumba: {info['numba_threads']} threads, {info['numba_threading_layer']} layer")
    print(table(rows))
    second = info["second_process"]
    if "error" in second:
        print(f"\nsecond process failed: {second['error']}")
    else:
        print(f"\nsecond process, headline formats: import {second['import_s']:.2f} s, first call "
              f"{second['first_call_s']:.2f} s (cached kernels, no compile)")  # fmt: skip
    print(f"\nload average before {info['load_before']}, after {info['load_after']}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    with open(args.json, "w") as f:
        json.dump({"machine": info, "repeats": repeats, "rows": rows}, f, indent=1)
    print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Command line of the golden vectors: ``python -m golden {generate,regenerate,check,bench}``."""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
from pathlib import Path

from golden.kinds import KINDS
from golden.store import DEFAULT_LANES, DestinationError, SetError, generate, load, regenerate
from simulator import TileConfig

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

_FIELDS = {f.name: f for f in dataclasses.fields(TileConfig)}
# TileConfig.seed is the analog noise seed; --seed is the stimulus seed.
_FLAG_NAMES = {name: "noise-seed" if name == "seed" else name.replace("_", "-") for name in _FIELDS}


def _field_value(name: str, text, where: str):
    """A TileConfig field value from TOML or command-line text, typed like the field."""
    if name not in _FIELDS:
        raise SystemExit(f"{where}: unknown TileConfig field {name!r}; known: {sorted(_FIELDS)}")
    default = _FIELDS[name].default
    if not isinstance(text, str):
        return text
    try:
        if isinstance(default, bool) or not isinstance(default, (int, float)):
            return text
        return int(text, 0) if isinstance(default, int) else float(text)
    except ValueError:
        kind = type(default).__name__
        raise SystemExit(f"{where}: {name} = {text!r} is not a valid {kind}") from None


def tile_config(config_path: str | None, settings: list[str], flags: dict) -> TileConfig:
    """The configuration from a TOML file, then ``--set NAME=VALUE``, then per-field flags."""
    values = {}
    if config_path:
        try:
            with open(config_path, "rb") as fh:
                data = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SystemExit(f"--config {config_path}: {exc}") from None
        for name, value in data.items():
            values[name] = _field_value(name, value, config_path)
    for item in settings:
        name, sep, text = item.partition("=")
        if not sep:
            raise SystemExit(f"--set {item!r}: expected NAME=VALUE")
        values[name.strip()] = _field_value(name.strip(), text.strip(), f"--set {item}")
    for name, text in flags.items():
        if text is not None:
            values[name] = _field_value(name, text, f"--{_FLAG_NAMES[name]}")
    try:
        return TileConfig(**values)
    except (TypeError, ValueError) as exc:
        raise SystemExit(f"invalid configuration: {exc}") from None


def _cmd_generate(args) -> int:
    flags = {name: getattr(args, f"field_{name}") for name in _FIELDS}
    cfg = tile_config(args.config, args.set, flags)
    out = generate(cfg, args.out, seed=args.seed, count=args.count,
                   input_count=args.input_count, tile_count=args.tile_count, lanes=args.lanes,
                   p=args.p, force=args.force, progress=not args.quiet,
                   counts=dict(args.kind_count) or None)  # fmt: skip
    print(f"wrote {out}")
    return 0


def _kind_count(text: str) -> tuple[str, int]:
    name, sep, value = text.partition("=")
    if not sep or not value.strip().lstrip("-").isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not KIND=COUNT")
    return name.strip(), int(value)


def _cmd_regenerate(args) -> int:
    out = regenerate(args.manifest, args.out, force=args.force, progress=not args.quiet)
    print(f"wrote {out}")
    return 0


def _cmd_check(args) -> int:
    from golden.simulate import run_bench

    given = [name for name, value in (("SET", args.set), ("--sets", args.sets),
                                      ("--seeds", args.seeds)) if value]  # fmt: skip
    if len(given) != 1:
        raise SystemExit("check: give one of SET, --sets DIR... or --seeds FIRST:LAST"
                         + (f" (got {' and '.join(given)})" if given else ""))  # fmt: skip
    if not args.set:
        return _cmd_check_many(args)
    vset = load(args.set)
    failures = 0
    for sim in args.sim:
        for unit in args.unit or KINDS:
            result = run_bench(vset, unit, sim, stall_seed=args.stall_seed,
                               stall_pct=args.stall_pct)  # fmt: skip
            status = "ok" if result.ok else "FAILED"
            print(f"{sim:9s} {unit:6s} {result.passed} passed, {result.failed} failed "
                  f"(exit {result.returncode}, {result.seconds:.2f} s) {status}")  # fmt: skip
            if not result.ok:
                failures += 1
                print(result.output, file=sys.stderr)
    return 1 if failures else 0


def _cmd_check_many(args) -> int:
    """Many sets (or a set per stimulus seed) as Dask tasks; one combined summary."""
    from golden import distributed
    from simulator.sweep import engine

    units = args.unit or list(KINDS)
    if args.sets:
        sets = [str(load(path).path) for path in args.sets]  # verified here: fail early
    else:
        seeds = distributed.seed_range(args.seeds)
        config = tile_config(args.config, [], {}).to_dict()
    address = engine.scheduler_address(args.scheduler)
    client = None if address == "none" else engine.connect(address, args.workers,
                                                           args.connect_timeout)  # fmt: skip

    def report(run):
        status = "ok" if run.ok else "FAILED"
        print(f"{run.set} {run.sim:9s} {run.unit:6s} {run.passed} passed, {run.failed} failed "
              f"(exit {run.returncode}, {run.seconds:.2f} s) {status}", flush=True)
        if not run.ok:
            print(run.output, file=sys.stderr)

    try:
        if not args.sets:
            make = distributed.generate_set
            sets = ([make(config, s, args.count, args.work) for s in seeds] if client is None
                    else [client.submit(make, config, s, args.count, args.work, pure=False)
                          for s in seeds])  # fmt: skip
        runs = distributed.check_sets(sets, args.sim, units, stall_seed=args.stall_seed,
                                      stall_pct=args.stall_pct, client=client,
                                      on_result=report)  # fmt: skip
    finally:
        if client is not None:
            engine.disconnect(client)
    failed = sum(not run.ok for run in runs)
    where = "here" if client is None else f"on {address}"
    print(f"{len(runs)} benches on {len(runs) // (len(args.sim) * len(units))} sets ({where}): "
          f"{len(runs) - failed} passed, {failed} failed: {'FAILED' if failed else 'ok'}")
    return 1 if failed else 0


def _cmd_bench(args) -> int:
    from golden.bench import run

    run(args.count, args.sim, Path(args.work))
    return 0


def _add_output_arguments(parser) -> None:
    """Where a command writes a set, and how."""
    parser.add_argument("--out", required=True, help="directory to create")
    parser.add_argument("--force", action="store_true", help="replace an existing --out")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m golden",
        description="Golden test vectors of the ABFP tile's RTL units (docs/golden.md).",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="generate a vector set for a configuration")
    gen.add_argument("--config", help="TOML file of TileConfig fields (top-level keys)")
    gen.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                     help="set a TileConfig field (repeatable; overrides --config)")
    for name, field in _FIELDS.items():
        gen.add_argument(f"--{_FLAG_NAMES[name]}", dest=f"field_{name}", metavar="VALUE",
                         help=f"TileConfig.{name} (default {field.default}); overrides --set")
    gen.add_argument("--seed", type=int, default=0, help="stimulus seed (default 0)")
    gen.add_argument("--count", type=int, default=1000,
                     help="random output-unit beats, and end-to-end beats (default 1000)")
    gen.add_argument("--input-count", type=int, help="random input-unit vectors (default COUNT)")
    gen.add_argument("--tile-count", type=int, help="end-to-end beats (default COUNT)")
    gen.add_argument("--kind-count", type=_kind_count, action="append", default=[],
                     metavar="KIND=COUNT", help="random transactions of one kind by its name, "
                     "e.g. tile_ctrl=500 (repeatable; overrides the counts above)")  # fmt: skip
    gen.add_argument("--lanes", type=int, default=DEFAULT_LANES,
                     help=f"LANES of the output unit (default {DEFAULT_LANES})")
    gen.add_argument("--p", type=int, help="P of the input unit (default: largest divisor of "
                     "n up to 16)")  # fmt: skip
    _add_output_arguments(gen)
    gen.set_defaults(func=_cmd_generate)

    reg = sub.add_parser("regenerate", help="regenerate the set a manifest describes")
    reg.add_argument("manifest", help="manifest.json (or its directory)")
    _add_output_arguments(reg)
    reg.set_defaults(func=_cmd_regenerate)

    chk = sub.add_parser("check", help="run the Verilog vector benches on a set, or on many "
                         "sets as Dask tasks")  # fmt: skip
    chk.add_argument("set", nargs="?", help="vector set directory")
    many = chk.add_argument_group("many sets, as Dask tasks with one combined summary")
    many.add_argument("--sets", nargs="+", metavar="DIR", help="vector set directories")
    many.add_argument("--seeds", metavar="FIRST:LAST",
                      help="generate and check one set per stimulus seed FIRST..LAST")
    many.add_argument("--config", help="with --seeds: TOML file of TileConfig fields")
    many.add_argument("--count", type=int, default=200,
                      help="with --seeds: random transactions per kind (default 200)")
    many.add_argument("--work", default="build/golden/seeds",
                      help="with --seeds: where the sets go (default build/golden/seeds)")
    many.add_argument("--scheduler", metavar="ADDRESS",
                      help="none (here), local (default: a LocalCluster sized to the machine) "
                           "or tcp://host:port; default $DASK_SCHEDULER_ADDRESS if set")
    many.add_argument("--workers", type=int, help="workers of the local cluster")
    many.add_argument("--connect-timeout", type=float, default=10.0, metavar="S",
                      help="seconds to wait for a scheduler (default 10)")
    chk.add_argument("--sim", action="append", choices=("icarus", "verilator"),
                     help="simulator (repeatable; default icarus)")
    chk.add_argument("--unit", action="append", choices=tuple(KINDS),
                     help="bench of one kind (repeatable; default every kind)")
    chk.add_argument("--stall-seed", type=int, default=1, help="seed of the random stalls")
    chk.add_argument("--stall-pct", type=int, default=0,
                     help="percent of clocks stalled on valid and on ready (default 0)")
    chk.set_defaults(func=_cmd_check)

    bench = sub.add_parser("bench", help="measure generation and checking throughput")
    bench.add_argument("--count", type=int, default=1_000_000,
                       help="output-unit transactions of the large run (default 1000000)")
    bench.add_argument("--sim", action="append", choices=("icarus", "verilator"),
                       help="simulator (repeatable; default both)")
    bench.add_argument("--work", default="build/golden/bench", help="scratch directory")
    bench.set_defaults(func=_cmd_bench)
    return parser


def _scheduler_error() -> type:
    """The sweep engine's error for an unreachable scheduler (imports no Dask)."""
    from simulator.sweep.engine import SchedulerError

    return SchedulerError


def main(argv=None) -> int:
    """Entry point of ``python -m golden``; returns the exit status.

    1 for a bad set, setting or failing bench, 2 for a destination that cannot be written or
    an unreachable Dask scheduler, 130 after Ctrl-C (temporary files removed).
    """
    args = _parser().parse_args(argv)
    if getattr(args, "sim", None) is None and args.command == "check":
        args.sim = ["icarus"]
    try:
        return args.func(args)
    except DestinationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except _scheduler_error() as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (SetError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; nothing was written", file=sys.stderr)
        return 130


def _terminated(signum, frame):
    """SIGTERM unwinds like an error, so the writers' cleanup runs (exit 128 + signal)."""
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminated)
    sys.exit(main())

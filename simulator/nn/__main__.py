"""Command line: ``python -m simulator.nn evaluate --model NAME [options]`` (docs/networks.md)
and ``python -m simulator.nn finetune --model NAME --method dnf|qat --out DIR [options]``
(docs/finetuning.md)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from simulator.nn.calibrate import CRITERIA, calibrate
from simulator.nn.cli import Parser, bits, gain, known_errors, noise, positive_int
from simulator.nn.evaluate import evaluate, load_model, write_json
from simulator.nn.policy import LayerPolicy, PolicyError
from simulator.nn.stats import format_table


def _parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m simulator.nn",
                     description="Real networks on the bit-exact ABFP tile.")  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    def model_command(name, help_text):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--model", required=True,
                       help="a shipped model (see `models`) or module:function returning one")
        p.add_argument("--policy", metavar="FILE", help="policy file (.toml or .json)")
        p.add_argument("--n", type=positive_int, help="tile width n")
        p.add_argument("--gain", type=gain, help="analog gain G")
        p.add_argument("--bits", type=bits, metavar="BX,BW,BY", help="DAC, weight, ADC bits")
        p.add_argument("--noise", type=noise, metavar="KIND[:AMPLITUDE]",
                       help="uniform:1, gaussian:0.5 or none (amplitude in ADC LSB)")
        return p

    ev = model_command("evaluate", "Evaluate a model in float32 and on the tile.")
    ev.add_argument("--calibrate", action="store_true",
                    help="choose each layer's gain from the calibration batch first")
    ev.add_argument("--criterion", choices=CRITERIA, default="output",
                    help="what --calibrate minimises: the model output's error (default) or "
                         "each layer's own error")
    ev.add_argument("--seeds", type=positive_int, default=1, metavar="S",
                    help="number of noise seeds (default 1)")
    ev.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    ev.add_argument("--limit", type=positive_int, metavar="SAMPLES",
                    help="evaluate the first SAMPLES samples only")
    ev.add_argument("--batch-size", type=positive_int, metavar="B",
                    help="samples per forward pass (results do not depend on it)")
    ev.add_argument("--stats", action="store_true", help="print per-layer tile statistics")
    ev.add_argument("--json", metavar="OUT", help="write the results to this JSON file")
    ev.add_argument("--weights", metavar="FILE",
                    help="the model's weights from this file (e.g. a finetune's weights.npz)")
    ft = model_command("finetune", "Finetune a model for the tile (DNF or QAT) and evaluate "
                                   "it on the bit-exact tile after every epoch.")
    ft.add_argument("--method", required=True, help="dnf or qat")
    ft.add_argument("--epochs", type=positive_int, default=1, help="epochs (default 1)")
    ft.add_argument("--out", required=True, metavar="DIR",
                    help="directory for the weights (weights.npz; minilm: weights.safetensors) "
                         "and finetune.json")
    ft.add_argument("--seed", type=int, default=0,
                    help="seed of shuffling, training noise and histogram (default 0)")
    ft.add_argument("--lr", type=gain, default=3e-4, help="Adam learning rate (default 3e-4)")
    ft.add_argument("--batch-size", type=positive_int, default=64, metavar="B",
                    help="samples per training step (default 64)")
    ft.add_argument("--train-limit", type=positive_int, metavar="SAMPLES",
                    help="train on the first SAMPLES training samples only")
    ft.add_argument("--histogram-batch", type=positive_int, default=256, metavar="SAMPLES",
                    help="DNF: training samples that make the histograms (default 256)")
    ft.add_argument("--eval-limit", type=positive_int, metavar="SAMPLES",
                    help="evaluate on the first SAMPLES test samples only")
    ft.add_argument("--eval-seeds", type=positive_int, default=1, metavar="S",
                    help="tile noise seeds 0..S-1 of each evaluation (default 1)")
    ft.add_argument("--threads", type=positive_int, default=1,
                    help="torch threads (default 1; results are reproducible per count)")
    ft.add_argument("--weights", metavar="FILE", help="start from these weights")
    model_command("layers", "Print a model's layers and the configuration each one gets.")
    listing = "List the shipped models."
    sub.add_parser("models", help=listing, description=listing)
    return parser


def _policy(args) -> LayerPolicy:
    policy = LayerPolicy.load(args.policy) if args.policy else LayerPolicy()
    changes = {"n": args.n, "gain": args.gain, **(args.bits or {}), **(args.noise or {})}
    changes = {k: v for k, v in changes.items() if v is not None}
    try:
        default = dataclasses.replace(policy.default, **changes)
    except (TypeError, ValueError) as exc:
        raise PolicyError(str(exc)) from None
    return LayerPolicy(default, [{"pattern": p, **r} for p, r in policy.rules])


def _models(args) -> int:
    from simulator.nn import models

    rows = [{"model": s.name, "metric": s.metric, "description": s.description}
            for s in models.MODELS.values()]  # fmt: skip
    print(format_table(rows))
    return 0


def _layers(args) -> int:
    model = load_model(args.model)
    print(_policy(args).bind(model.layer_names).table())
    return 0


def _evaluate(args) -> int:
    if args.json and not Path(args.json).resolve().parent.is_dir():
        raise ValueError(f"--json {args.json}: its directory does not exist")
    model = load_model(args.model, args.weights)
    policy = _policy(args).bind(model.layer_names)
    calibration = None
    if args.calibrate:
        result = calibrate(model.forward, model.calibration_batch(), policy, seed=args.seed,
                           criterion=args.criterion)  # fmt: skip
        policy = result.policy
        calibration = result.to_dict()
        print(result.table())
        print(f"calibration: {result.seconds:.2f} s\n")
    seeds = list(range(args.seed, args.seed + args.seeds))
    ev = evaluate(model, policy, seeds=seeds, limit=args.limit, batch_size=args.batch_size,
                  stats=args.stats, name=args.model)  # fmt: skip
    ev.calibration = calibration
    cfg = policy.default
    print(f"model {ev.model}: {ev.samples} samples, n={cfg.n} bits={cfg.bx}/{cfg.bw}/{cfg.by} "
          f"gain={cfg.gain:g} noise={cfg.noise}:{cfg.noise_amplitude:g}"
          f"{' (calibrated gains)' if calibration else ''}, seeds {seeds}")  # fmt: skip
    print(format_table(ev.rows()))
    if ev.stats:
        print()
        print(format_table(ev.stats))
    print(f"time: float32 {ev.seconds['float32']:.2f} s, tile {ev.seconds['tile_per_seed']:.2f} "
          "s per seed")  # fmt: skip
    if args.json:
        write_json(args.json, ev.to_dict())
    return 0


def _finetune(args) -> int:
    from simulator.nn import finetune

    def report(figures):
        tile = ", ".join(f"{k} {v:.4f}" for k, v in figures["tile"].items())
        took = (f", train {figures['train_seconds']:.1f} s, loss {figures['train_loss']:.4f}"
                if "train_seconds" in figures else "")  # fmt: skip
        print(f"epoch {figures['epoch']}: tile {tile} ({figures['samples']} samples, "
              f"eval {figures['eval_seconds']:.1f} s){took}", flush=True)

    result = finetune.finetune(
        args.model, args.method, _policy(args), epochs=args.epochs, seed=args.seed, lr=args.lr,
        batch_size=args.batch_size, train_limit=args.train_limit,
        histogram_batch=args.histogram_batch, eval_limit=args.eval_limit,
        eval_seeds=range(args.eval_seeds), threads=args.threads, weights=args.weights,
        on_epoch=report,
    )
    weights, figures = finetune.save(result, args.out)
    print(f"wrote {weights} and {figures}; evaluate with "
          f"{finetune.get_task(args.model).weights_hint.replace('PATH', repr(str(weights)))}")
    return 0


_COMMANDS = {"evaluate": _evaluate, "finetune": _finetune, "layers": _layers, "models": _models}


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except known_errors() as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

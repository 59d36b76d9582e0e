"""Argument types and error handling shared by the project's command lines
(``python -m simulator.nn``, ``simulator.sweep``, ``simulator.search``)."""

from __future__ import annotations

import argparse

from simulator.config import NOISE_KINDS

__all__ = ["Parser", "bits", "gain", "known_errors", "noise", "positive_int", "progress_bar"]


class Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr, exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 1")
    return value


def bits(text: str) -> dict:
    parts = text.split(",")
    if len(parts) != 3 or not all(p.strip().isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"{text!r} is not bx,bw,by (three integers, e.g. 8,8,8)")
    return dict(zip(("bx", "bw", "by"), (int(p) for p in parts), strict=True))


def noise(text: str) -> dict:
    kind, _, amplitude = text.partition(":")
    if kind not in NOISE_KINDS:
        raise argparse.ArgumentTypeError(
            f"{text!r}: noise kind must be one of {', '.join(NOISE_KINDS)} (e.g. uniform:1)"
        )
    if kind == "none":
        if amplitude:
            raise argparse.ArgumentTypeError(f"{text!r}: 'none' takes no amplitude")
        return {"noise": "none"}
    try:
        return {"noise": kind, "noise_amplitude": float(amplitude or 1.0)}
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: amplitude is not a number") from None


def gain(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def known_errors() -> tuple:
    """The exceptions a command reports as bad input: one line, exit status 2."""
    errors = [ValueError, OSError, ImportError]
    try:
        from simulator.nn.models import ModelFileError, ModelUnavailable
    except ImportError:
        return tuple(errors)
    return tuple(errors + [ModelFileError, ModelUnavailable])


def progress_bar(unit: str, total: int | None = None, enabled: bool = True, **options):
    """A tqdm bar on stderr (drawn only on a terminal, gone when done), or ``None`` when
    disabled or tqdm is not installed."""
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit=unit, disable=None, leave=False, **options)

"""Stimulus of ``abfp_input_unit``: random vectors and the shared directed cases.

Vectors are uint32 arrays of ``cfg.in_fmt`` bit patterns, one element per tile row. The directed
cases (ties, zeros, extremes, the scale format's overflow and underflow edges...) come from
``golden.directed``, the one source shared with the golden vector sets.
"""

from __future__ import annotations

import numpy as np

from golden.directed import input_cases, input_vectors
from simulator import TileConfig


class VectorMaker:
    """Random and directed n-element vectors (uint32 bit patterns of the input format).

    ``mix`` cycles through :attr:`KINDS`; ``"directed"`` takes the next vector of
    ``golden.directed.input_vectors`` (finite cases, drawn once from ``rng``), round robin.
    """

    KINDS = ("random", "wide", "directed")

    def __init__(self, cfg: TileConfig, rng: np.random.Generator):
        self.cfg, self.rng = cfg, rng
        self.fmt = cfg.in_fmt
        self.directed = [
            (name, vec.astype(np.uint32)) for name, vec in input_vectors(cfg, rng, nonfinite=False)
        ]
        self._next_directed = 0

    def compose(self, sign, exponent, mantissa) -> np.ndarray:
        f = self.fmt
        return (
            (np.asarray(sign, np.uint32) << (f.exp_bits + f.man_bits))
            | (np.asarray(exponent, np.uint32) << f.man_bits)
            | np.asarray(mantissa, np.uint32)
        )

    def signs(self, count: int) -> np.ndarray:
        return self.rng.integers(0, 2, count)

    def mantissas(self, count: int) -> np.ndarray:
        return self.rng.integers(0, 1 << self.fmt.man_bits, count)

    def make(self, kind: str) -> np.ndarray:
        n, rng = self.cfg.n, self.rng
        exp_ones = (1 << self.fmt.exp_bits) - 1
        if kind == "random":
            top = int(rng.integers(1, exp_ones))
            exps = np.clip(top - rng.integers(0, self.cfg.bx + 3, n), 0, exp_ones - 1)
            vec = self.compose(self.signs(n), exps, self.mantissas(n))
            vec[rng.random(n) < 0.1] = 0
            return vec
        if kind == "wide":
            return self.compose(self.signs(n), rng.integers(0, exp_ones, n), self.mantissas(n))
        if kind == "directed":
            _, vec = self.directed[self._next_directed % len(self.directed)]
            self._next_directed += 1
            return vec.copy()
        raise ValueError(f"unknown vector kind {kind!r}; known: {self.KINDS}")

    def nonfinite(self) -> np.ndarray:
        """A random vector with one or two inf or NaN elements."""
        f, rng = self.fmt, self.rng
        vec = self.make("random")
        exp_ones = (1 << f.exp_bits) - 1
        for _ in range(int(rng.integers(1, 3))):
            man = 0 if rng.random() < 0.5 else int(rng.integers(1, 1 << f.man_bits))
            vec[rng.integers(0, self.cfg.n)] = self.compose(rng.integers(0, 2), exp_ones, man)
        return vec

    def directed_cases(self, nonfinite: bool = False) -> list[tuple[str, np.ndarray]]:
        """Every directed case once, freshly drawn: (case name, uint32 (rows, n))."""
        return [
            (name, block.astype(np.uint32))
            for name, block in input_cases(self.cfg, self.rng, nonfinite=nonfinite)
        ]

    def mix(self, count: int, nonfinite_prob: float = 0.0) -> list[np.ndarray]:
        """``count`` vectors cycling through every kind, some made non-finite."""
        out = []
        for i in range(count):
            if self.rng.random() < nonfinite_prob:
                out.append(self.nonfinite())
            else:
                out.append(self.make(self.KINDS[i % len(self.KINDS)]))
        return out

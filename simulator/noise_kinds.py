"""The analog noise kinds (docs/arithmetic.md step 6) in one table.

:class:`~simulator.TileConfig` accepts exactly the names of :data:`KINDS`, and every kernel
turns Philox words into noise through :func:`uniform_of_word` then
:func:`noise_of_uniforms`, whose branches are built from the same table: a kind's transform
is reached by its code and by nothing else.

A transform maps ``u = (word + 0.5) * 2**-32`` (one 32-bit Philox word, so ``0 < u < 1``)
and the configuration's ``noise_amplitude`` to the noise in ADC LSB, as a float64.

Adding a kind
-------------
1. Write its transform in this module: an ``@njit(inline="always", cache=True)`` function
   ``(u, amplitude) -> float64``.
2. Register it with one line, ``_register(code, name, description, transform)``, taking the
   next unused code. Its chunk transform is then a loop of ``transform``; a kind whose
   transform does not vectorise as one loop may pass ``chunk=`` a faster one with the same
   bits (as the Gaussian does).

``TileConfig(noise=name)`` then accepts it and every kernel reaches it. Give the kind a
reference distribution in ``tests/test_noise.py`` (``REFERENCES``: the test fails for a kind
without one) and describe it in docs/arithmetic.md step 6.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from simulator._scalar import (
    in_normal_tail,
    inverse_normal_cdf,
    normal_quantile_central,
    normal_quantile_tail,
)

__all__ = [
    "KINDS",
    "NONE",
    "NoiseKind",
    "kind",
    "names",
    "noise_of_uniforms",
    "uniform_of_word",
]


@dataclass(frozen=True)
class NoiseKind:
    """One noise distribution.

    Attributes
    ----------
    code : int
        The kernels' integer for this kind (its index in :data:`KINDS`).
    name : str
        The value of ``TileConfig.noise``.
    description : str
        One line: the distribution and what ``noise_amplitude`` means for it.
    transform : numba dispatcher
        ``(u, amplitude) -> float64``, ``u`` in (0, 1) from one Philox word.
    chunk : numba dispatcher
        ``(u, out, scratch, amplitude)``: ``out[i] = transform(u[i], amplitude)`` for every
        ``i`` of the float64 arrays ``u`` and ``out`` (same length), bit for bit; ``u`` may be
        overwritten and ``scratch``, an int64 array at least as long, is free for its use.
    """

    code: int
    name: str
    description: str
    transform: object
    chunk: object


KINDS: tuple[NoiseKind, ...] = ()


def _register(code, name, description, transform, chunk=None):
    global KINDS
    if code != len(KINDS) or name in names():
        raise ValueError(f"noise kind {name!r}: code {code} must be {len(KINDS)}, name unused")
    KINDS += (NoiseKind(code, name, description, transform, chunk or _loop_of(transform)),)


def _loop_of(transform):
    """The chunk transform that applies ``transform`` to each value in one loop."""

    @njit(inline="always")
    def chunk(u, out, scratch, amplitude):
        for i in range(u.shape[0]):
            out[i] = transform(u[i], amplitude)

    return chunk


def names() -> tuple[str, ...]:
    """The registered kind names, in code order."""
    return tuple(k.name for k in KINDS)


def kind(key) -> NoiseKind:
    """The registered kind of a name or code.

    Raises
    ------
    ValueError
        For a name or code that is not in :data:`KINDS`, listing the registered ones.
    """
    is_code = isinstance(key, (int, np.integer)) and not isinstance(key, (bool, np.bool_))
    for registered in KINDS:
        if (key == registered.code) if is_code else (key == registered.name):
            return registered
    listing = ", ".join(f"{k.code}: {k.name}" for k in KINDS)
    raise ValueError(f"unknown noise kind {key!r}; registered kinds are {{{listing}}}")


@njit(inline="always", cache=True)
def _none(u, amplitude):
    return 0.0


@njit(inline="always", cache=True)
def _uniform(u, amplitude):
    return amplitude * (u - 0.5)


@njit(inline="always", cache=True)
def _gaussian(u, amplitude):
    return amplitude * inverse_normal_cdf(u)


@njit(inline="always", cache=True)
def _gaussian_chunk(u, out, scratch, amplitude):
    # The central formula for every value, in a loop that vectorises; then the values in the
    # tails (about 4.85% of them) and their indices packed to the front of u and scratch
    # without branches, the costly tail formula (log, sqrt) for those alone, in a loop that
    # vectorises too, and its results put in place. Each out[i] is _gaussian(u[i], amplitude).
    length = u.shape[0]
    for i in range(length):
        out[i] = amplitude * normal_quantile_central(u[i])
    tails = 0
    for i in range(length):
        value = u[i]
        u[tails] = value
        scratch[tails] = i
        tails += in_normal_tail(value)
    for t in range(tails):
        u[t] = amplitude * normal_quantile_tail(u[t])
    for t in range(tails):
        out[scratch[t]] = u[t]


_register(0, "none", "no noise: e = 0", _none)
_register(
    1, "uniform", "uniform of width noise_amplitude: e = amplitude * (u - 0.5), exact", _uniform
)
_register(
    2,
    "gaussian",
    "normal of sigma noise_amplitude: e = amplitude * Phi^-1(u) (Acklam, rel. error < 1.2e-9)",
    _gaussian,
    chunk=_gaussian_chunk,
)

NONE = kind("none").code  # kernels skip drawing words for it


def _branches(kinds):
    """An inline kernel function ``(code, u, out, scratch, amplitude)`` that runs the chunk
    transform of the kind whose code matches, trying ``kinds`` in order; past the last it
    gives NaN. No kernel sees an unregistered code (the callers look the code up with
    :func:`kind` first), and an exception inside a parallel loop would keep numba from
    parallelising it."""
    if not kinds:

        @njit(inline="always")
        def unregistered(code, u, out, scratch, amplitude):
            out[:] = math.nan

        return unregistered
    code, chunk, rest = kinds[0].code, kinds[0].chunk, _branches(kinds[1:])

    @njit(inline="always")
    def branch(kind_code, u, out, scratch, amplitude):
        if kind_code == code:
            chunk(u, out, scratch, amplitude)
        else:
            rest(kind_code, u, out, scratch, amplitude)

    return branch


_chunk = _branches(KINDS)
_TWO_M32 = 2.0**-32


@njit(inline="always", cache=True)
def uniform_of_word(word):
    """``u = (word + 0.5) * 2**-32`` of one 32-bit Philox word, strictly inside (0, 1)."""
    return (np.float64(word) + 0.5) * _TWO_M32


@njit(inline="always", cache=True)
def noise_of_uniforms(u, out, scratch, code, amplitude):
    """Noise in ADC LSB of kind ``code``, ``out[i] = transform(u[i], amplitude)``, for every
    ``u[i]`` of :func:`uniform_of_word`, by the kind's chunk transform (the same bits), which
    may overwrite ``u``; ``scratch`` is an int64 array at least as long as ``u``. Kernels
    draw the words of a chunk in one loop and transform them here, so that the loops
    vectorise."""
    _chunk(code, u, out, scratch, amplitude)

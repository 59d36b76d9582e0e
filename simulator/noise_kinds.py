"""The analog noise kinds (docs/arithmetic.md step 6) in one table.

:class:`~simulator.TileConfig` accepts exactly the names of :data:`KINDS`, and every kernel
turns a Philox word into noise through :func:`noise_from_word` (or :func:`uniform_of_word`
then :func:`noise_of_uniform`), whose branches are built from the same table: a kind's
transform is reached by its code and by nothing else.

A transform maps ``u = (word + 0.5) * 2**-32`` (one 32-bit Philox word, so ``0 < u < 1``)
and the configuration's ``noise_amplitude`` to the noise in ADC LSB, as a float64.

Adding a kind
-------------
1. Write its transform in this module: an ``@njit(inline="always", cache=True)`` function
   ``(u, amplitude) -> float64``.
2. Register it with one line, ``_register(code, name, description, transform)``, taking the
   next unused code.

``TileConfig(noise=name)`` then accepts it and every kernel reaches it. Give the kind a
reference distribution in ``tests/test_noise.py`` (``REFERENCES``: the test fails for a kind
without one) and describe it in docs/arithmetic.md step 6.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from simulator._scalar import inverse_normal_cdf

__all__ = [
    "KINDS",
    "NONE",
    "NoiseKind",
    "kind",
    "names",
    "noise_from_word",
    "noise_of_uniform",
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
    """

    code: int
    name: str
    description: str
    transform: object


KINDS: tuple[NoiseKind, ...] = ()


def _register(code, name, description, transform):
    global KINDS
    if code != len(KINDS) or name in names():
        raise ValueError(f"noise kind {name!r}: code {code} must be {len(KINDS)}, name unused")
    KINDS += (NoiseKind(code, name, description, transform),)


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


_register(0, "none", "no noise: e = 0", _none)
_register(
    1, "uniform", "uniform of width noise_amplitude: e = amplitude * (u - 0.5), exact", _uniform
)
_register(
    2,
    "gaussian",
    "normal of sigma noise_amplitude: e = amplitude * Phi^-1(u) (Acklam, rel. error < 1.2e-9)",
    _gaussian,
)

NONE = kind("none").code  # kernels skip drawing words for it


def _branches(kinds):
    """An inline kernel function ``(code, u, amplitude)`` that takes the transform of the kind
    whose code matches, trying ``kinds`` in order; past the last it gives NaN. No kernel sees
    an unregistered code (the callers look the code up with :func:`kind` first), and an
    exception inside a parallel loop would keep numba from parallelising it."""
    if not kinds:

        @njit(inline="always")
        def unregistered(code, u, amplitude):
            return math.nan

        return unregistered
    code, transform, rest = kinds[0].code, kinds[0].transform, _branches(kinds[1:])

    @njit(inline="always")
    def branch(kind_code, u, amplitude):
        if kind_code == code:
            return transform(u, amplitude)
        return rest(kind_code, u, amplitude)

    return branch


_transform = _branches(KINDS)
_TWO_M32 = 2.0**-32


@njit(inline="always", cache=True)
def uniform_of_word(word):
    """``u = (word + 0.5) * 2**-32`` of one 32-bit Philox word, strictly inside (0, 1)."""
    return (np.float64(word) + 0.5) * _TWO_M32


@njit(inline="always", cache=True)
def noise_of_uniform(u, code, amplitude):
    """Noise in ADC LSB of kind ``code`` from ``u`` of :func:`uniform_of_word`:
    ``transform(u, amplitude)``. Kernels draw the words of a chunk in one loop and transform
    them in the next, so that both vectorise."""
    return _transform(code, u, amplitude)


@njit(inline="always", cache=True)
def noise_from_word(word, code, amplitude):
    """Noise in ADC LSB of kind ``code`` from one 32-bit Philox word."""
    return noise_of_uniform(uniform_of_word(word), code, amplitude)

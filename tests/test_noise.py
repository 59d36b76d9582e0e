"""The noise generator: Philox4x32-10 raw words against Random123's known answers and
randomgen, the documented word-to-noise mapping, purity in (seed, stream, b, i, j), and the
distributions."""

import math
import statistics

import numpy as np
import pytest
from numba import njit
from randomgen import Philox
from scipy import stats

from simulator import NOISE_KINDS, TileConfig, _kernels, abfp_linear, noise, noise_kinds
from simulator._scalar import inverse_normal_cdf, philox4x32
from simulator.noise_kinds import noise_of_uniforms
from tests import reference as ref

MASK32 = 2**32 - 1

# Random123 kat_vectors, philox4x32_10: (counter words, key words, output words).
KNOWN_ANSWERS = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    (
        (0xFFFFFFFF,) * 4,
        (0xFFFFFFFF,) * 2,
        (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD),
    ),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


def model_block(counter, key):
    words = philox4x32(*(np.uint64(c) for c in counter), *(np.uint64(k) for k in key))
    return tuple(int(w) for w in words)


def randomgen_block(counter, key):
    """One Philox4x32-10 block from randomgen, which increments its counter before each block
    (so it is started one below the wanted counter)."""
    counter_int = sum(c << (32 * n) for n, c in enumerate(counter))
    key_int = key[0] | (key[1] << 32)
    generator = Philox(number=4, width=32, key=key_int, counter=(counter_int - 1) % 2**128)
    return tuple(int(w) for w in generator.random_raw(4))


@pytest.mark.parametrize("counter, key, expected", KNOWN_ANSWERS)
def test_philox_known_answers(counter, key, expected):
    assert model_block(counter, key) == expected
    assert randomgen_block(counter, key) == expected


def test_philox_matches_randomgen_on_random_blocks():
    rng = np.random.default_rng(11)
    for _ in range(300):
        counter = tuple(int(c) for c in rng.integers(0, 2**32, 4))
        key = tuple(int(k) for k in rng.integers(0, 2**32, 2))
        assert model_block(counter, key) == randomgen_block(counter, key)


def expected_uniform(seed, stream, shape, batch_offset, width):
    """Documented uniform noise from randomgen words: counter (i >> 2, j, b, stream), key
    (seed low, seed high), word i & 3, e = width * ((word + 0.5) * 2^-32 - 0.5)."""
    batch, rows, tiles = shape
    out = np.empty(shape)
    key = (seed & MASK32, seed >> 32)
    for b in range(batch):
        for j in range(tiles):
            for i0 in range(0, rows, 4):
                words = randomgen_block((i0 >> 2, j, b + batch_offset, stream), key)
                for i in range(i0, min(i0 + 4, rows)):
                    out[b, i, j] = width * ((words[i & 3] + 0.5) * 2.0**-32 - 0.5)
    return out


@pytest.mark.parametrize(
    "seed, stream, batch_offset, width",
    [(0, 0, 0, 1.0), (2**64 - 1, 2**32 - 1, 5, 0.37), (0x0123456789ABCDEF, 3, 2**31, 2.0)],
)
def test_uniform_noise_is_the_documented_function_of_philox_words(
    seed, stream, batch_offset, width
):
    cfg = TileConfig(noise="uniform", noise_amplitude=width)
    shape = (3, 10, 4)
    got = noise(shape, cfg, seed=seed, stream=stream, batch_offset=batch_offset)
    assert got.dtype == np.float64
    expected = expected_uniform(seed, stream, shape, batch_offset, width)
    np.testing.assert_array_equal(got.view(np.uint64), expected.view(np.uint64))


def test_seed_defaults_to_the_configuration_seed():
    cfg = TileConfig(noise="uniform", seed=12345)
    np.testing.assert_array_equal(
        noise((2, 5, 3), cfg).view(np.uint64), noise((2, 5, 3), cfg, seed=12345).view(np.uint64)
    )


def test_gaussian_noise_is_the_normal_quantile_of_the_uniform_word():
    """e = sigma * Phi^-1(u) within Acklam's relative error (1.15e-9), checked against the
    standard library's quantile."""
    sigma = 0.8
    shape = (4, 9, 5)
    got = noise(shape, TileConfig(noise="gaussian", noise_amplitude=sigma), seed=99, stream=1)
    # The uniform generator at width 1 exposes u - 0.5 of the same words exactly.
    u = noise(shape, TileConfig(noise="uniform", noise_amplitude=1.0), seed=99, stream=1) + 0.5
    quantile = np.vectorize(statistics.NormalDist().inv_cdf)(u)
    np.testing.assert_allclose(got, sigma * quantile, rtol=1.5e-9, atol=0)


@pytest.mark.parametrize("kind", ["uniform", "gaussian"])
def test_noise_is_a_pure_function_of_its_indices(kind):
    cfg = TileConfig(noise=kind, noise_amplitude=1.0)
    whole = noise((6, 11, 5), cfg, seed=7, stream=2)
    chunk = noise((2, 11, 5), cfg, seed=7, stream=2, batch_offset=3)
    fewer_rows = noise((6, 6, 5), cfg, seed=7, stream=2)
    fewer_tiles = noise((6, 11, 2), cfg, seed=7, stream=2)
    np.testing.assert_array_equal(chunk.view(np.uint64), whole[3:5].view(np.uint64))
    np.testing.assert_array_equal(fewer_rows.view(np.uint64), whole[:, :6].view(np.uint64))
    np.testing.assert_array_equal(fewer_tiles.view(np.uint64), whole[:, :, :2].view(np.uint64))
    repeated = noise((6, 11, 5), cfg, seed=7, stream=2)
    np.testing.assert_array_equal(repeated.view(np.uint64), whole.view(np.uint64))
    for other in (
        noise((6, 11, 5), cfg, seed=8, stream=2),
        noise((6, 11, 5), cfg, seed=7, stream=3),
        noise((6, 11, 5), cfg, seed=7, stream=2, batch_offset=1),
    ):
        assert np.count_nonzero(other == whole) < whole.size // 100


def test_no_noise_is_zero():
    got = noise((3, 4, 5), TileConfig(noise="none"), seed=1)
    np.testing.assert_array_equal(got.view(np.uint64), np.zeros((3, 4, 5), np.uint64))


def test_uniform_distribution():
    width = 1.0
    draws = noise((10, 100, 100), TileConfig(noise="uniform", noise_amplitude=width), seed=3)
    count = draws.size
    assert draws.min() > -width / 2 and draws.max() < width / 2
    # Mean 0 and variance w^2/12, each within 5 standard errors.
    assert abs(draws.mean()) < 5 * width / np.sqrt(12 * count)
    assert abs(draws.var() - width**2 / 12) < 5 * width**2 / np.sqrt(180 * count)
    histogram, _ = np.histogram(draws, bins=10, range=(-width / 2, width / 2))
    assert np.all(np.abs(histogram - count / 10) < 5 * np.sqrt(count / 10))


def test_gaussian_distribution():
    sigma = 1.86
    draws = noise((10, 100, 100), TileConfig(noise="gaussian", noise_amplitude=sigma), seed=4)
    count = draws.size
    assert abs(draws.mean()) < 5 * sigma / np.sqrt(count)
    assert abs(draws.std() - sigma) < 5 * sigma / np.sqrt(2 * count)
    within_one_sigma = np.mean(np.abs(draws) < sigma)
    assert abs(within_one_sigma - 0.682689492) < 5 * np.sqrt(0.22 / count)


def acklam_quantile(p):
    """Acklam's normal quantile as docs/arithmetic.md step 6 writes it, in plain Python
    float64 with branches, the tail's log from frexp and its 12-term atanh series: an
    independent statement of the kernels' branch-free, bit-level computation."""
    a = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02,
         1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00)
    b = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02,
         6.680131188771972e01, -1.328068155288572e01)
    c = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00,
         -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00)
    d = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00,
         3.754408661907416e00)  # fmt: skip

    def log(x):
        m, e = math.frexp(x)
        if m < 0.7071067811865476:
            m, e = 2.0 * m, e - 1
        f = m - 1.0
        s = f / (2.0 + f)
        series = 0.0
        for k in range(12, 0, -1):
            series = series * (s * s) + 1.0 / (2 * k + 1)
        return e * 0.6931471805599453 + 2.0 * s * (series * (s * s) + 1.0)

    def tail(p):
        q = math.sqrt(-2.0 * log(p))
        num = ((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]
        return num / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0)

    if p < 0.02425:
        return tail(p)
    if p > 1.0 - 0.02425:
        return -tail(1.0 - p)
    q = p - 0.5
    r = q * q
    num = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
    return num / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0)


@njit
def _quantiles(values, out):
    for k in range(values.size):
        out[k] = inverse_normal_cdf(values[k])


def test_gaussian_noise_is_acklam_bit_for_bit():
    """Sampled words, the extreme words and both sides of each branch boundary."""
    sigma = 0.8
    shape = (6, 40, 9)
    got = noise(shape, TileConfig(noise="gaussian", noise_amplitude=sigma), seed=5, stream=2)
    u = _philox_u(5, 2, shape).ravel()
    edges = np.array([0, 1, 2**31 - 1, 2**31, 2**32 - 2, 2**32 - 1], np.float64)
    boundary = np.floor(np.array([0.02425, 1 - 0.02425]) * 2.0**32)
    words = np.concatenate([edges, boundary - 1, boundary, boundary + 1])
    u_edges = (words + 0.5) * 2.0**-32
    want = np.array([sigma * acklam_quantile(float(v)) for v in u])
    np.testing.assert_array_equal(got.ravel().view(np.uint64), want.view(np.uint64))
    out = np.empty_like(u_edges)
    _quantiles(u_edges, out)
    want_edges = np.array([acklam_quantile(float(v)) for v in u_edges])
    np.testing.assert_array_equal(out.view(np.uint64), want_edges.view(np.uint64))


GAUSSIAN = noise_kinds.kind("gaussian").code


@njit(error_model="numpy")
def _gaussian_chunks(u, amplitude, chunk, out):
    """The chunk transform over consecutive chunks of ``u`` (the last one short), on copies:
    the transform may overwrite its input."""
    scratch = np.empty(chunk, np.int64)
    for lo in range(0, u.shape[0], chunk):
        hi = min(lo + chunk, u.shape[0])
        noise_of_uniforms(u[lo:hi].copy(), out[lo:hi], scratch, GAUSSIAN, amplitude)


def _tail_heavy_words(rng, count):
    """Words of which about half fall in the tails (u < 0.02425 or u > 1 - 0.02425), the
    extreme words and both sides of each boundary among them, in random order."""
    low_end = int(0.02425 * 2**32)
    boundary = np.floor(np.array([0.02425, 1 - 0.02425]) * 2.0**32).astype(np.int64)
    fixed = np.concatenate([[0, 1, 2, 2**31 - 1, 2**31, 2**32 - 2, 2**32 - 1],
                            boundary - 1, boundary, boundary + 1])  # fmt: skip
    low = rng.integers(0, low_end + 2, count // 4)
    high = 2**32 - 1 - rng.integers(0, low_end + 2, count // 4)
    anywhere = rng.integers(0, 2**32, count - 2 * (count // 4))
    return rng.permutation(np.concatenate([fixed, low, high, anywhere]))


@pytest.mark.parametrize("chunk", [1, 7, 256])
def test_gaussian_chunk_transform_is_acklam_bit_for_bit_in_the_tails(chunk):
    """The chunk transform (central formula everywhere, tail formula for the packed tail
    values) against the plain branching statement, over chunks with few, many and only tail
    values."""
    rng = np.random.default_rng(chunk)
    words = _tail_heavy_words(rng, 3000)
    u = (words.astype(np.float64) + 0.5) * 2.0**-32
    tails = (u < 0.02425) | (u > 1 - 0.02425)
    assert 1000 < np.count_nonzero(tails) < 2000
    sigma = 1.7
    want = np.array([sigma * acklam_quantile(float(v)) for v in u])
    for values, expected in ((u, want), (u[tails], want[tails]), (u[~tails], want[~tails])):
        got = np.empty_like(values)
        _gaussian_chunks(values, sigma, chunk, got)
        np.testing.assert_array_equal(got.view(np.uint64), expected.view(np.uint64))


def test_gaussian_abfp_linear_matches_the_reference_bit_for_bit():
    """The fused kernel with Gaussian noise (ABFP_GEMM's default product and chunks of 256
    outputs) against the pure-Python reference given the documented noise: Acklam's quantile
    of randomgen's Philox words, about 4.85% of them in the tails."""
    cfg = TileConfig(n=8, bx=8, bw=8, by=8, gain=2.0, noise="gaussian", noise_amplitude=2.5)
    seed, stream = 2**64 - 1, 3
    rng = np.random.default_rng(31)
    x, w = rng.standard_normal((2, 21)), rng.standard_normal((300, 21))
    shape = (2, 300, 3)
    u = _philox_u(seed, stream, shape)
    assert np.count_nonzero((u < 0.02425) | (u > 1 - 0.02425)) > 50
    e = np.vectorize(lambda v: 2.5 * acklam_quantile(float(v)))(u)
    got = noise(shape, cfg, seed=seed, stream=stream)
    np.testing.assert_array_equal(got.view(np.uint64), e.view(np.uint64))
    expected = ref.forward(x, w, cfg, e)
    fused = abfp_linear(x, w, cfg, seed=seed, stream=stream)
    np.testing.assert_array_equal(fused.view(np.uint32), ref.fp32_bits(expected.y))


def test_gaussian_noise_passes_kolmogorov_smirnov_and_moments():
    sigma = 1.3
    draws = noise((8, 128, 64), TileConfig(noise="gaussian", noise_amplitude=sigma), seed=21)
    z = draws.ravel() / sigma
    count = z.size
    assert stats.kstest(z, "norm").pvalue > 1e-3
    assert abs(z.mean()) < 5 / np.sqrt(count)
    assert abs(z.var() - 1.0) < 5 * np.sqrt(2 / count)
    assert abs(stats.skew(z)) < 5 * np.sqrt(6 / count)
    assert abs(stats.kurtosis(z)) < 5 * np.sqrt(24 / count)


# Each registered kind's documented distribution, from u = (word + 0.5) * 2^-32, and the
# relative tolerance of the comparison (0: bit for bit).
REFERENCES = {
    "none": (lambda u, amplitude: np.zeros_like(u), 0.0),
    "uniform": (lambda u, amplitude: amplitude * (u - 0.5), 0.0),
    "gaussian": (
        lambda u, amplitude: amplitude * np.vectorize(statistics.NormalDist().inv_cdf)(u),
        1.5e-9,  # Acklam's relative error
    ),
}


def test_every_registered_kind_has_a_reference():
    assert set(noise_kinds.names()) == set(REFERENCES)
    assert [k.code for k in noise_kinds.KINDS] == list(range(len(noise_kinds.KINDS)))
    assert noise_kinds.names() == NOISE_KINDS


def _philox_u(seed, stream, shape):
    """u of every (b, i, j) from randomgen's Philox words, as documented."""
    batch, rows, tiles = shape
    u = np.empty(shape)
    for b in range(batch):
        for j in range(tiles):
            for i0 in range(0, rows, 4):
                words = randomgen_block((i0 >> 2, j, b, stream), (seed & MASK32, seed >> 32))
                for i in range(i0, min(i0 + 4, rows)):
                    u[b, i, j] = (words[i & 3] + 0.5) * 2.0**-32
    return u


@pytest.mark.parametrize("kind", noise_kinds.KINDS, ids=lambda k: k.name)
def test_every_registered_kind_reaches_its_own_transform(kind):
    """Through the configuration, noise() and the fused kernel, each kind gives its
    documented distribution of the Philox words."""
    amplitude = 0.8
    cfg = TileConfig(n=4, noise=kind.name, noise_amplitude=amplitude, gain=4.0)
    assert cfg.noise_code == kind.code and noise_kinds.kind(kind.name) is kind
    shape = (3, 9, 4)
    got = noise(shape, cfg, seed=2**40 + 7, stream=5)
    function, rtol = REFERENCES[kind.name]
    want = function(_philox_u(2**40 + 7, 5, shape), amplitude)
    if rtol:
        np.testing.assert_allclose(got, want, rtol=rtol, atol=0)
    else:
        np.testing.assert_array_equal(got.view(np.uint64), want.view(np.uint64))
    rng = np.random.default_rng(kind.code)
    x, w = rng.standard_normal((3, 16)), rng.standard_normal((9, 16))
    fused = abfp_linear(x, w, cfg, seed=2**40 + 7, stream=5)
    _, trace = abfp_linear(x, w, cfg, seed=2**40 + 7, stream=5, trace=True)
    np.testing.assert_array_equal(trace.noise.view(np.uint64), got.view(np.uint64))
    np.testing.assert_array_equal(fused.view(np.uint32), trace.y.view(np.uint32))


def test_unregistered_codes_are_refused():
    unregistered = len(noise_kinds.KINDS)
    for key in (unregistered, -1, "pink", True):
        with pytest.raises(ValueError, match="unknown noise kind"):
            noise_kinds.kind(key)
    out = np.zeros((1, 4, 1))
    with pytest.raises(ValueError, match="unknown noise kind"):
        _kernels.noise_block(np.uint64(1), 0, 0, unregistered, 1.0, out)
    assert not out.any()
    with pytest.raises(ValueError, match="unknown noise kind"):
        _kernels.fused_linear((8, 7), (8, 7), (8, 7), (8, 23), (8, 7), unregistered, "blas")

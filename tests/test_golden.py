"""Golden vectors: the committed reference set, its trust checks and the Verilog benches."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

import golden
from golden import layout as lay
from golden import store
from golden.__main__ import main
from golden.kinds import KINDS
from golden.simulate import UNITS, run_bench
from simulator import TileConfig
from tests import reference as ref

REFERENCE = Path(__file__).resolve().parent.parent / "golden" / "reference"
STALLS = {"stall_seed": 7, "stall_pct": 25}
_HEX_FILES = [(unit, spec.name, spec.role) for unit, k in KINDS.items() for spec in k.files]


@pytest.fixture(scope="module")
def reference():
    return golden.load(REFERENCE)


def _rehash(set_dir: Path, fname: str) -> None:
    """Make the manifest match an edited file, as a consistent but wrong set would."""
    mpath = set_dir / "manifest.json"
    manifest = json.loads(mpath.read_text())
    digest = hashlib.sha256((set_dir / fname).read_bytes()).hexdigest()
    manifest["files"][fname]["sha256"] = digest
    manifest["digest"] = store.manifest_digest(manifest)
    mpath.write_text(json.dumps(manifest))


def _flip_bit(path: Path, line: int, bit: int) -> None:
    """Flip bit ``bit`` (from the LSB) of line ``line`` of a hex file."""
    lines = path.read_bytes().split(b"\n")
    digits = bytearray(lines[line])
    pos = len(digits) - 1 - bit // 4
    digits[pos] = ord(f"{int(chr(digits[pos]), 16) ^ (1 << (bit % 4)):x}")
    lines[line] = bytes(digits)
    path.write_bytes(b"\n".join(lines))


# ---- the reference set -----------------------------------------------------------------


def test_reference_is_the_default_tile(reference):
    assert reference.config == TileConfig()
    man = reference.manifest
    assert man["project_version"] == __import__("simulator").__version__
    assert man["hdl_parameters"]["output"] == TileConfig().hdl_parameters("output", LANES=4)
    assert man["hdl_parameters"]["input"] == TileConfig().hdl_parameters("input", P=16)
    assert man["constants"]["rescale_constant_bits"] == f"{TileConfig().rescale_constant_bits:08x}"
    for unit in UNITS:
        assert man["units"][unit]["transactions"] >= 500
    size = sum(p.stat().st_size for p in REFERENCE.iterdir())
    assert size < 2_000_000


@pytest.mark.parametrize(("unit", "fname", "role"), _HEX_FILES)
def test_hex_files_hold_the_npz_arrays(reference, unit, fname, role):
    fields = reference.layout(fname).unpack((REFERENCE / fname).read_bytes())
    for name, values in fields.items():
        np.testing.assert_array_equal(values, reference.arrays[f"{unit}/{role}/{name}"])


def test_output_expected_values_match_the_independent_reference(reference):
    """Directed rows and a sample of random rows recomputed with ``tests/reference.py``."""
    cfg, a = reference.config, reference.arrays
    k = ref.rescale_constant(cfg)
    last = np.flatnonzero(a["output/stimulus/last"][:, 0])
    first = np.concatenate([[0], last[:-1] + 1])
    random_stop = reference.manifest["units"]["output"]["cases"]["random"][1]
    rows = [r for r in range(len(last)) if first[r] >= random_stop] + list(range(0, 400, 13))
    assert len(rows) > 60
    got, want = [], []
    for r in rows:
        for lane in range(a["output/stimulus/qy"].shape[1]):
            acc = None
            for beat in range(first[r], last[r] + 1):
                sw = ref.decode(int(a["output/stimulus/sw"][beat, lane]), cfg.scale_fmt)
                sx = ref.decode(int(a["output/stimulus/sx"][beat, 0]), cfg.scale_fmt)
                t = ref.mul(float(a["output/stimulus/qy"][beat, lane]), ref.mul(sw, sx, ref.FP32),
                            ref.FP32)  # fmt: skip
                p = ref.round_value(ref.mul(t, k, ref.FP32), cfg.partial_fmt)
                acc = p if acc is None else ref.add(acc, p, cfg.acc_fmt)
            want.append(ref.encode(ref.round_value(acc, cfg.out_fmt), cfg.out_fmt))
            got.append(int(a["output/expected/y"][r, lane]))
    np.testing.assert_array_equal(np.array(got), np.array(want))


def test_input_expected_values_match_the_independent_reference(reference):
    cfg, a = reference.config, reference.arrays
    cases = reference.manifest["units"]["input"]["cases"]
    rows = list(range(cases["random"][1], len(a["input/stimulus/x"]))) + list(range(0, 500, 50))
    sticky = False
    nonfinite_seen = 0
    for r in sorted(rows):
        values = [ref.decode(int(b), cfg.in_fmt) for b in a["input/stimulus/x"][r]]
        if all(math.isfinite(v) for v in values):
            _, scales, codes = ref.quantize_rows([values], cfg.n, cfg.bx, cfg.in_fmt,
                                                 cfg.scale_fmt)  # fmt: skip
            want_sx, want_codes = ref.encode(scales[0][0], cfg.scale_fmt), codes[0][0]
        else:  # the unit's own rule (docs/rtl_input_unit.md)
            sticky = True
            nonfinite_seen += 1
            want_sx, want_codes = cfg.scale_fmt.canonical_nan_bits, [0] * cfg.n
        assert int(a["input/expected/sx"][r, 0]) == want_sx, f"vector {r}"
        np.testing.assert_array_equal(a["input/expected/code"][r], want_codes, err_msg=f"{r}")
        if r >= cases["random"][1]:
            assert int(a["input/expected/nonfinite"][r, 0]) == int(sticky), f"vector {r}"
    assert nonfinite_seen == cases["nonfinite_inputs"][1] - cases["nonfinite_inputs"][0] - 1


def test_regenerating_the_reference_is_byte_identical(tmp_path):
    out = store.regenerate(REFERENCE / "manifest.json", tmp_path / "again", progress=False)
    names = sorted(p.name for p in REFERENCE.iterdir())
    assert names == sorted(p.name for p in out.iterdir())
    for name in names:
        assert (out / name).read_bytes() == (REFERENCE / name).read_bytes(), name


@pytest.mark.hdl
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
@pytest.mark.parametrize("unit", UNITS)
def test_reference_passes_the_vector_bench(reference, unit, sim):
    result = run_bench(reference, unit, sim, **STALLS)
    assert result.ok, result.output[-3000:]
    expected = reference.manifest["units"][unit]
    total = expected.get("outputs", expected["transactions"])
    if unit == "tile":
        total += expected["vectors"]
    assert (result.passed, result.failed, result.failures) == (total, 0, [])


# ---- trust: tampering, mutation, incomplete sets ---------------------------------------


@pytest.mark.hdl
@pytest.mark.parametrize(
    ("unit", "fname", "kind", "sim"),
    [
        ("output", "output_expected.hex", "output", "icarus"),
        ("output", "output_expected.hex", "output", "verilator"),
        ("input", "input_expected.hex", "vector", "icarus"),
        ("tile", "tile_expected.hex", "output", "icarus"),
        ("tile", "tile_x_expected.hex", "vector", "icarus"),
    ],
)
def test_a_flipped_expected_bit_fails_exactly_that_transaction(tmp_path, unit, fname, kind, sim):
    copy = tmp_path / "set"
    shutil.copytree(REFERENCE, copy)
    lines = (copy / fname).read_bytes().split()
    rng = np.random.default_rng(len(fname))
    line = int(rng.integers(len(lines)))
    width = store.read_manifest(copy)["files"][fname]["layout"]["width"]
    _flip_bit(copy / fname, line, int(rng.integers(width)))
    with pytest.raises(golden.SetError, match=fname):
        golden.load(copy)
    _rehash(copy, fname)
    result = run_bench(golden.load(copy), unit, sim, **STALLS)
    assert result.returncode != 0
    assert result.failed == 1
    assert result.failures == [(kind, line)], result.output[-2000:]
    if sim == "icarus":
        assert main(["check", str(copy), "--unit", unit, "--sim", sim]) == 1


def test_load_refuses_missing_or_incomplete_sets(tmp_path):
    with pytest.raises(golden.SetError, match="no manifest"):
        golden.load(tmp_path)
    copy = tmp_path / "set"
    shutil.copytree(REFERENCE, copy)
    (copy / "tile_x.hex").unlink()
    with pytest.raises(golden.SetError, match="tile_x.hex"):
        golden.load(copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    del manifest["files"]["tile_x.hex"]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(golden.SetError, match="incomplete manifest.*tile_x.hex"):
        golden.load(copy)
    (copy / "manifest.json").write_text(json.dumps(manifest)[:100])
    with pytest.raises(golden.SetError, match="not valid JSON"):
        golden.load(copy)


def test_an_interrupted_generation_leaves_no_set(tmp_path, monkeypatch):
    def interrupted(tmp, *args):
        (tmp / "input_stimulus.hex").write_text("0\n")
        raise KeyboardInterrupt

    monkeypatch.setattr(store, "_write_files", interrupted)
    with pytest.raises(KeyboardInterrupt):
        store.generate(TileConfig(n=8), tmp_path / "set", count=10, progress=False)
    assert list(tmp_path.iterdir()) == []


# ---- generator interface ---------------------------------------------------------------


@pytest.mark.hdl
def test_cli_reads_toml_then_set_then_flags_and_the_set_passes_on_icarus(tmp_path):
    toml = tmp_path / "tile.toml"
    toml.write_text('n = 32\nbx = 6\nby = 11\ngain = 1.86\nnoise = "gaussian"\n'
                    'noise_amplitude = 0.7\nscale_fmt = "fp16"\npartial_fmt = "fp16"\n'
                    'out_fmt = "fp16"\nin_fmt = "fp16"\nseed = 9\n')  # fmt: skip
    out = tmp_path / "set"
    status = main(["generate", "--config", str(toml), "--set", "n=48", "--set", "bx=7",
                   "--n", "64", "--seed", "5", "--count", "300", "--input-count", "60",
                   "--lanes", "3", "--p", "8", "--out", str(out), "--quiet"])  # fmt: skip
    assert status == 0
    vset = golden.load(out)
    want = TileConfig(n=64, bx=7, by=11, gain=1.86, noise="gaussian", noise_amplitude=0.7,
                      scale_fmt="fp16", partial_fmt="fp16", out_fmt="fp16", in_fmt="fp16",
                      seed=9)  # fmt: skip
    assert vset.config == want
    assert vset.manifest["hdl_parameters"]["output"]["LANES"] == 3
    assert vset.manifest["hdl_parameters"]["input"]["P"] == 8
    for unit in UNITS:
        result = run_bench(vset, unit, "icarus", **STALLS)
        assert result.ok, result.output[-3000:]


def test_cli_names_what_is_wrong(tmp_path, capsys):
    with pytest.raises(SystemExit, match="unknown TileConfig field 'width'"):
        main(["generate", "--set", "width=3", "--out", str(tmp_path / "a")])
    with pytest.raises(SystemExit, match="gain = 'big' is not a valid float"):
        main(["generate", "--set", "gain=big", "--out", str(tmp_path / "a")])
    with pytest.raises(SystemExit, match="TileConfig.bx must be an int in"):
        main(["generate", "--bx", "40", "--out", str(tmp_path / "a")])
    assert main(["generate", "--n", "12", "--p", "5", "--out", str(tmp_path / "a")]) == 1
    assert "p = 5 must divide n = 12" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()


def test_layout_packs_and_unpacks_signed_fields():
    layout = lay.Layout(("code", 5, 3, True), ("flag", 1, 1, False), ("wide", 33, 1, False))
    values = {"code": np.array([[-16, 15, -1], [0, 7, -8]]), "flag": np.array([[1], [0]]),
              "wide": np.array([[(1 << 33) - 1], [12345]])}  # fmt: skip
    text = layout.pack(values)
    assert text.split(b"\n")[0] == b"%x" % ((((1 << 33) - 1) << 16) | (1 << 15) | (31 << 10)
                                           | (15 << 5) | 16)  # fmt: skip
    back = layout.unpack(text)
    for name, arr in values.items():
        np.testing.assert_array_equal(back[name], arr)
    with pytest.raises(ValueError, match=r"field 'code'\[1, 2\] = -17 does not fit signed 5"):
        layout.pack({**values, "code": np.array([[0, 0, 0], [0, 0, -17]])})

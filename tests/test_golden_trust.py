"""Self-verifying vector sets: what ``golden.load`` re-derives and what ``regenerate`` proves."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

import golden
from golden import store
from golden.__main__ import main
from simulator import TileConfig

SETTINGS = {"seed": 3, "count": 120, "input_count": 12, "tile_count": 40}


@pytest.fixture(scope="module")
def small_set(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("trust") / "set"
    return store.generate(TileConfig(n=8), out, progress=False, **SETTINGS)


@pytest.fixture
def copy(small_set, tmp_path) -> Path:
    dest = tmp_path / "copy"
    shutil.copytree(small_set, dest)
    return dest


def _edit(set_dir: Path, change, redigest: bool = True) -> None:
    """Apply ``change`` to the manifest, re-digesting it as a consistent forger would."""
    mpath = set_dir / "manifest.json"
    manifest = json.loads(mpath.read_text())
    change(manifest)
    if redigest:
        manifest["digest"] = store.manifest_digest(manifest)
    mpath.write_text(json.dumps(manifest))


def _set(path: tuple, value):
    def change(manifest):
        node = manifest
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return change


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_an_untouched_set_loads(small_set):
    vset = golden.load(small_set)
    assert vset.manifest["digest"] == store.manifest_digest(vset.manifest)


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        # A configuration edited alone: the constants (k_i) no longer follow from it.
        (("config", "gain"), 2.0, r"constants\.rescale_constant"),
        (("constants", "rescale_constant_bits"), "3f800000", r"constants\.rescale_constant_bits"),
        (("hdl_parameters", "output", "LANES"), 3, r"hdl_parameters\.output\.LANES"),
        (("hdl_parameters", "input", "DAC_BITS"), 6, r"hdl_parameters\.input\.DAC_BITS"),
        (("generator", "lanes"), 2, r"hdl_parameters\.output\.LANES"),
        (("formats", "in_fmt", "man_bits"), 10, r"formats\.in_fmt\.man_bits"),
        (("files", "output_stimulus.hex", "layout", "width"), 100,
         r"files\.output_stimulus\.hex\.layout"),
        (("files", "input_expected.hex", "lines"), 3, r"input_expected\.hex: 3 lines"),
        (("units", "output", "outputs"), 1, r"units\.output\.outputs"),
        (("units", "tile", "files", "x"), "tile_beats.hex", r"units\.tile\.files"),
        (("project_version", ), "0.0.1", r"project_version"),
        (("format_version", ), 1, r"format 'abfp-golden-vectors' v1"),
    ],
)
def test_load_refuses_an_entry_its_configuration_does_not_give(copy, path, value, named):
    _edit(copy, _set(path, value))
    with pytest.raises(golden.SetError, match=named):
        golden.load(copy)


def test_load_refuses_a_manifest_edited_without_its_digest(copy):
    _edit(copy, _set(("units", "input", "cases", "random"), [0, 5]), redigest=False)
    with pytest.raises(golden.SetError, match="digest does not match"):
        golden.load(copy)


def test_load_refuses_a_file_rewritten_with_its_sha256(copy):
    """The file and its recorded SHA-256 edited together: the digest no longer matches."""
    fname = "output_expected.hex"
    lines = (copy / fname).read_bytes().split(b"\n")
    lines[0] = b"0" * len(lines[0]) if lines[0] != b"0" * len(lines[0]) else b"1" * len(lines[0])
    (copy / fname).write_bytes(b"\n".join(lines))
    digest = hashlib.sha256((copy / fname).read_bytes()).hexdigest()
    _edit(copy, _set(("files", fname, "sha256"), digest), redigest=False)
    with pytest.raises(golden.SetError, match="digest does not match"):
        golden.load(copy)


@pytest.mark.slow
def test_regenerate_reproduces_the_set_byte_for_byte(small_set, tmp_path):
    out = store.regenerate(small_set, tmp_path / "again", progress=False)
    for path in small_set.iterdir():
        assert (out / path.name).read_bytes() == path.read_bytes(), path.name


@pytest.mark.slow
def test_regenerate_refuses_a_consistent_forgery_and_leaves_nothing(copy, tmp_path):
    """An expected line changed with its SHA-256 and the digest recomputed passes load (no
    digest can tell), but regenerating from the generator settings exposes it."""
    fname = "input_expected.hex"
    lines = (copy / fname).read_bytes().split(b"\n")
    first = bytearray(lines[0])
    first[-1] = ord("0") if first[-1] != ord("0") else ord("1")
    lines[0] = bytes(first)
    (copy / fname).write_bytes(b"\n".join(lines))
    digest = hashlib.sha256((copy / fname).read_bytes()).hexdigest()
    _edit(copy, _set(("files", fname, "sha256"), digest))
    golden.load(copy)
    parent = tmp_path / "out"
    parent.mkdir()
    with pytest.raises(golden.SetError, match=f"regenerated {fname} differ"):
        store.regenerate(copy, parent / "again", progress=False)
    assert list(parent.iterdir()) == []


@pytest.mark.slow
def test_regenerate_refuses_edited_case_ranges(copy, tmp_path):
    _edit(copy, _set(("units", "input", "cases", "random"), [0, 5]))
    golden.load(copy)
    with pytest.raises(golden.SetError, match=r"differs from the given one in \['units'\]"):
        store.regenerate(copy, tmp_path / "again", progress=False)
    assert _leftovers(tmp_path) == [] and not (tmp_path / "again").exists()


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda m: m["generator"].pop("counts"), r"field generator\.counts is missing"),
        (lambda m: m["generator"]["counts"].pop("tile"), r"field generator\.counts\.tile is"),
        (lambda m: m["generator"].update(seed="1"), r"field generator\.seed must be a int"),
        (lambda m: m["generator"].update(p=3), r"generator: p = 3 must divide n = 8"),
        (lambda m: m["generator"]["counts"].update(input=0), r"input_count must be an int in"),
        (lambda m: m.update(config={"n": "eight"}), r"field config is not a valid TileConfig"),
        (lambda m: m.update(config=[1]), r"field config must be a dict"),
        (lambda m: m.pop("units"), r"incomplete manifest, missing 'units'"),
        (lambda m: m["files"]["tile_x.hex"].pop("sha256"), r"files\.tile_x\.hex\.sha256 is"),
        (lambda m: m["units"]["output"].pop("outputs"), r"units\.output\.outputs is missing"),
    ],
)
def test_regenerate_names_the_bad_field_of_a_malformed_manifest(copy, tmp_path, capsys,
                                                                 change, named):  # fmt: skip
    _edit(copy, change)
    with pytest.raises(golden.SetError, match=named):
        store.regenerate(copy / "manifest.json", tmp_path / "again", progress=False)
    status = main(["regenerate", str(copy / "manifest.json"), "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert status == 1
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err
    assert not (tmp_path / "again").exists() and not (tmp_path / "b").exists()

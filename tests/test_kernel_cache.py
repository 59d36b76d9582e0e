"""numba's cached kernels are dropped when any source file of the package changes."""

from simulator import _cache


def test_cached_kernels_dropped_only_when_the_source_changes(tmp_path, monkeypatch):
    package = tmp_path / "pkg"
    cache = package / "__pycache__"
    cache.mkdir(parents=True)
    source = package / "_scalar.py"
    source.write_text("A = 1\n")
    monkeypatch.setattr(_cache, "_PACKAGE", package)
    monkeypatch.setattr(_cache, "_CACHE", cache)
    monkeypatch.setattr(_cache, "_STAMP", cache / "numba-source.sha256")

    def cached_kernels():
        return sorted(p.name for p in cache.iterdir() if p.suffix in (".nbi", ".nbc"))

    (cache / "k.f-1.py311.nbi").write_text("index")
    (cache / "k.f-1.py311.1.nbc").write_text("code")
    (cache / "other.pyc").write_text("bytecode")
    _cache.drop_stale_kernels()  # no stamp yet: the cache's source is unknown
    assert cached_kernels() == []
    assert (cache / "other.pyc").exists()

    (cache / "k.f-1.py311.nbi").write_text("index")
    _cache.drop_stale_kernels()  # same source: the cache stays
    assert cached_kernels() == ["k.f-1.py311.nbi"]

    source.write_text("A = 2\n")  # an edit of a file the kernels inline
    _cache.drop_stale_kernels()
    assert cached_kernels() == []
    assert not list(cache.glob("*.tmp"))

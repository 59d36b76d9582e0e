"""The documentation's worked example is the model's own output."""

import re
import runpy
import shutil
import subprocess
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_worked_example_in_arithmetic_page_is_current():
    page = (DOCS / "arithmetic.md").read_text()
    start = page.index("<!-- worked-example:start -->\n") + len("<!-- worked-example:start -->\n")
    end = page.index("\n<!-- worked-example:end -->")
    example = runpy.run_path(str(DOCS / "worked_example.py"))["worked_example"]()
    assert page[start:end] == example


# ---- the repository holds its own contract ---------------------------------------------

ROOT = DOCS.parent
# The contract lives in docs/arithmetic.md: no prose may cite a specification outside the
# repository ("SPEC.md", "SPEC step 8", "../shared/..."), which a clone does not have.
OUTSIDE_REFERENCE = re.compile(rb"SPEC(?:\.md|'s| steps?\b)|\bthe SPEC\b|\.\./shared|shared/abfp")
# A repository path in backticks (`simulator/model.py`, `rtl/`), optionally with `::name`.
REPO_PATH = re.compile(
    r"`((?:simulator|rtl|golden|tests|cocotb_tests|scripts|docs|bench)/[\w./-]*)(?:::\w+)?`"
)
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _project_files() -> list[Path]:
    """Files git tracks or would track (untracked but not ignored), without deleted ones."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    listing = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [ROOT / name for name in listing.split("\0") if name and (ROOT / name).is_file()]


def test_no_file_refers_to_a_specification_outside_the_repository():
    this = Path(__file__).resolve()
    hits = [
        f"{path.relative_to(ROOT)}:{line_no}: {line.decode(errors='replace').strip()}"
        for path in _project_files()
        if path.resolve() != this
        for line_no, line in enumerate(path.read_bytes().splitlines(), 1)
        if OUTSIDE_REFERENCE.search(line)
    ]
    assert hits == [], "cite docs/arithmetic.md (step N) instead:\n" + "\n".join(hits)


def test_every_repository_path_the_docs_name_exists():
    pages = [*sorted(DOCS.glob("*.md")), ROOT / "README.md"]
    missing = []
    for page in pages:
        text = page.read_text()
        named = [ROOT / m for m in REPO_PATH.findall(text) if "__pycache__" not in m]
        linked = [page.parent / m for m in LINK.findall(text) if "://" not in m]
        missing += [f"{page.name}: {p}" for p in named + linked if not p.exists()]
    assert missing == [], "no such path:\n" + "\n".join(missing)

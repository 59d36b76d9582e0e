"""The documentation's worked example is the model's own output."""

import runpy
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_worked_example_in_arithmetic_page_is_current():
    page = (DOCS / "arithmetic.md").read_text()
    start = page.index("<!-- worked-example:start -->\n") + len("<!-- worked-example:start -->\n")
    end = page.index("\n<!-- worked-example:end -->")
    example = runpy.run_path(str(DOCS / "worked_example.py"))["worked_example"]()
    assert page[start:end] == example

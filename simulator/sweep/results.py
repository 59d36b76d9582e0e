"""A sweep's results: one tidy row per cell, appended whole as each cell finishes.

A results directory holds

- ``results.jsonl``: a first ``{"record": "sweep", ...}`` line with the sweep spec, its digest
  and the package version, then one ``{"record": "cell", ...}`` line per finished cell (the
  complete row: metrics, float32 metrics, per-layer statistics, seconds, the full config);
  non-finite numbers are written as JSON's ``NaN``/``Infinity`` extension, which Python's
  ``json`` reads back;
- ``results.csv``: the same rows, one per line, the nested fields as JSON text.

Each row is one ``write`` on a file opened for appending, followed by ``fsync``, so a row is in
the file whole or not at all; a line cut short by a crash (no final newline) is dropped on
resume and its cell runs again. The CSV is rewritten from the JSON lines on resume, so the two
always hold the same rows.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["ResultsError", "Results", "read_rows"]

JSONL, CSV = "results.jsonl", "results.csv"
# Nested row fields, as JSON text in the CSV.
_NESTED = ("metrics", "float32_metrics", "layers", "calibrated_gains", "config")


class ResultsError(ValueError):
    """A results file that cannot be used: another sweep's, or not a results file."""


def _default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON data: {value!r}")


def _json(data) -> str:
    return json.dumps(data, default=_default)


def _replace_atomically(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, fsync it, rename it over ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _read_lines(path: Path) -> tuple[list[dict], bool]:
    """The records of a JSON-lines file and whether its last line was cut short."""
    text = path.read_text()
    lines = text.split("\n")
    torn = lines[-1] != ""  # a complete file ends in a newline
    records = []
    for number, line in enumerate(lines[:-1], 1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            raise ResultsError(f"{path}: line {number} is not a JSON record") from None
    return records, torn


def read_rows(path) -> tuple[dict, list[dict]]:
    """``(header, rows)`` of a results file (``results.jsonl`` or its directory)."""
    path = Path(path)
    if path.is_dir():
        path = path / JSONL
    try:
        records, _ = _read_lines(path)
    except OSError as exc:
        raise ResultsError(f"{path}: {exc.strerror or exc}") from None
    if not records or records[0].get("record") != "sweep":
        raise ResultsError(f"{path}: not a sweep results file (no sweep header line)")
    return records[0], [r for r in records[1:] if r.get("record") == "cell"]


class Results:
    """The results files of one sweep in directory ``out``.

    Parameters
    ----------
    out : path
        Directory of ``results.jsonl`` and ``results.csv`` (created, parents too).
    header : dict
        ``{"spec": ..., "digest": ..., "version": ...}`` of the sweep.
    axes : list of str
        The sweep's axis names: CSV columns.
    resume : bool
        Continue an existing results file of the same digest; without it an existing file is
        an error (nothing is overwritten).
    """

    def __init__(self, out, header: dict, axes, resume: bool):
        self.dir = Path(out)
        self.jsonl, self.csv = self.dir / JSONL, self.dir / CSV
        self.header = {"record": "sweep", **header}
        self.check(out, header["digest"], resume)
        self.columns = ["key", "model", "seed", "calibrate", *axes, "metric", "value",
                        "float32", "min_sqnr_db", "max_clip_rate", "samples", "seconds",
                        "version", *_NESTED]  # fmt: skip
        self.rows: list[dict] = []
        if self.jsonl.exists():
            self._resume()
        else:
            self._start()
        self._fds = {p: os.open(p, os.O_WRONLY | os.O_APPEND) for p in (self.jsonl, self.csv)}

    @staticmethod
    def check(out, digest: str, resume: bool) -> None:
        """Refuse, without writing anything, a results directory this sweep cannot use: an
        existing file without ``resume``, another sweep's file, a file that is not results."""
        path = Path(out) / JSONL
        if not path.exists():
            return
        if not resume:
            raise ResultsError(f"{path} exists; pass --resume to continue that sweep or choose "
                               "another --out")  # fmt: skip
        with path.open() as f:
            first = f.readline()
        try:
            header = json.loads(first)
        except json.JSONDecodeError:
            header = None
        if not isinstance(header, dict) or header.get("record") != "sweep":
            raise ResultsError(f"{path}: not a sweep results file (no sweep header line)")
        if header.get("digest") != digest:
            raise ResultsError(f"--resume {path}: results of another sweep (spec digest "
                               f"{str(header.get('digest'))[:12]}, this sweep {digest[:12]}); "
                               "rerun with that sweep's settings or choose another --out")

    @property
    def done(self) -> set[str]:
        """Keys of the cells already in the file."""
        return {row["key"] for row in self.rows}

    def _start(self) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ResultsError(f"--out {self.dir}: {exc.strerror or exc}") from None
        self._write_csv([])
        _replace_atomically(self.jsonl, _json(self.header) + "\n")

    def _resume(self) -> None:
        records, torn = _read_lines(self.jsonl)
        seen = set()
        for row in records[1:]:
            if row.get("record") == "cell" and row["key"] not in seen:
                seen.add(row["key"])
                self.rows.append(row)
        if torn or len(self.rows) != len(records) - 1:
            _replace_atomically(self.jsonl, "".join(_json(r) + "\n" for r in records[:1]
                                                    + self.rows))  # fmt: skip
        self._write_csv(self.rows)

    def _csv_line(self, row: dict) -> str:
        flat = {**row, **{k: _json(row.get(k)) for k in _NESTED}, **row["axes"]}
        buffer = io.StringIO()
        csv.DictWriter(buffer, self.columns, extrasaction="ignore").writerow(flat)
        return buffer.getvalue()

    def _write_csv(self, rows) -> None:
        buffer = io.StringIO()
        csv.writer(buffer).writerow(self.columns)
        _replace_atomically(self.csv, buffer.getvalue() + "".join(map(self._csv_line, rows)))

    def append(self, row: dict) -> None:
        """Add one finished cell's row to both files, whole, and flush it to disk."""
        row = {"record": "cell", **row}
        for path, text in ((self.jsonl, _json(row) + "\n"), (self.csv, self._csv_line(row))):
            data = text.encode()
            fd = self._fds[path]
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
            os.fsync(fd)
        self.rows.append(row)

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

"""Bit layouts of the vector files: named fields packed into one ``$readmemh`` word per line.

A line of a vector file is one transaction: a hexadecimal number (most significant digit
first, ``ceil(width / 4)`` digits, no prefix) whose bits hold the fields of a layout. A field is
``count`` elements of ``width`` bits each; element ``e`` of field ``f`` occupies bits
``[f.lsb + e * f.width +: f.width]``, exactly as the RTL ports pack lanes and elements
(``qy_i[l*ADC_BITS +: ADC_BITS]``, ``in_data_i[j*IN_W +: IN_W]``). Signed fields hold two's
complement values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Field", "Layout", "output_stimulus", "output_expected", "input_stimulus",
           "input_expected", "tile_beats"]  # fmt: skip

_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", np.uint8)
_PACK_ROWS = 1 << 14  # rows packed per chunk, bounding the bit matrix's memory


@dataclass(frozen=True)
class Field:
    """``count`` elements of ``width`` bits from bit ``lsb`` on (signed: two's complement)."""

    name: str
    lsb: int
    width: int
    count: int = 1
    signed: bool = False

    @property
    def total_width(self) -> int:
        return self.width * self.count

    def to_dict(self) -> dict:
        return {"name": self.name, "lsb": self.lsb, "width": self.width, "count": self.count,
                "signed": self.signed}  # fmt: skip


class Layout:
    """An ordered set of fields packed from bit 0 upwards, in the order given."""

    def __init__(self, *fields: tuple):
        packed, lsb = [], 0
        for name, width, count, signed in fields:
            packed.append(Field(name, lsb, width, count, signed))
            lsb += width * count
        self.fields = tuple(packed)
        self.width = lsb

    @property
    def digits(self) -> int:
        """Hexadecimal digits per line."""
        return -(-self.width // 4)

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"layout has no field {name!r}; fields: {[f.name for f in self.fields]}")

    def to_dict(self) -> dict:
        return {"width": self.width, "hex_digits": self.digits,
                "fields": [f.to_dict() for f in self.fields]}  # fmt: skip

    def _checked(self, values: dict, rows: int | None) -> tuple[dict, int]:
        missing = sorted({f.name for f in self.fields} - set(values))
        extra = sorted(set(values) - {f.name for f in self.fields})
        if missing or extra:
            raise ValueError(f"layout fields missing {missing}, unknown {extra}")
        out = {}
        for f in self.fields:
            arr = np.asarray(values[f.name]).astype(np.int64).reshape(-1, f.count)
            rows = arr.shape[0] if rows is None else rows
            if arr.shape[0] != rows:
                raise ValueError(f"field {f.name!r} has {arr.shape[0]} rows, expected {rows}")
            lo, hi = (-(1 << (f.width - 1)), 1 << (f.width - 1)) if f.signed else (0, 1 << f.width)
            if arr.size and (arr.min() < lo or arr.max() >= hi):
                bad = np.argwhere((arr < lo) | (arr >= hi))[0]
                raise ValueError(
                    f"field {f.name!r}[{bad[0]}, {bad[1]}] = {arr[tuple(bad)]} does not fit "
                    f"{'signed ' if f.signed else ''}{f.width} bits"
                )
            out[f.name] = arr & ((1 << f.width) - 1)
        return out, rows

    def pack(self, values: dict) -> bytes:
        """The ``$readmemh`` text of ``values`` (field name to (rows, count) integers)."""
        fields, rows = self._checked(values, None)
        chunks = []
        for start in range(0, rows, _PACK_ROWS):
            stop = min(start + _PACK_ROWS, rows)
            bits = np.zeros((stop - start, self.digits * 4), np.uint8)
            for f in self.fields:
                vals = fields[f.name][start:stop]
                for e in range(f.count):
                    for k in range(f.width):
                        bits[:, f.lsb + e * f.width + k] = (vals[:, e] >> k) & 1
            msb_first = bits[:, ::-1].reshape(stop - start, self.digits, 4)
            nibbles = msb_first @ np.array([8, 4, 2, 1], np.uint8)
            text = np.empty((stop - start, self.digits + 1), np.uint8)
            text[:, :-1] = _HEX_DIGITS[nibbles]
            text[:, -1] = ord("\n")
            chunks.append(text.tobytes())
        return b"".join(chunks)

    def unpack(self, text: bytes) -> dict:
        """Inverse of :meth:`pack`: field name to (rows, count) int64 arrays."""
        lines = text.split()
        if any(len(line) != self.digits for line in lines):
            bad = next(i for i, line in enumerate(lines) if len(line) != self.digits)
            raise ValueError(f"line {bad + 1} has {len(lines[bad])} hex digits, expected "
                             f"{self.digits}")  # fmt: skip
        raw = np.frombuffer(b"".join(lines), np.uint8).reshape(len(lines), self.digits)
        nibbles = np.where(raw >= ord("a"), raw - ord("a") + 10, raw - ord("0")).astype(np.uint8)
        bits = ((nibbles[:, :, None] >> np.array([3, 2, 1, 0], np.uint8)) & 1).reshape(
            len(lines), -1
        )[:, ::-1]
        out = {}
        for f in self.fields:
            vals = np.zeros((len(lines), f.count), np.int64)
            for e in range(f.count):
                for k in range(f.width):
                    vals[:, e] |= bits[:, f.lsb + e * f.width + k].astype(np.int64) << k
            if f.signed:
                vals = np.where(vals >= 1 << (f.width - 1), vals - (1 << f.width), vals)
            out[f.name] = vals
        return out


def output_stimulus(hdl: dict) -> Layout:
    """One input beat of ``abfp_output_unit``: ``{last, first, sx, sw, qy}``."""
    scale_w = 1 + hdl["SCALE_EXP"] + hdl["SCALE_MAN"]
    return Layout(
        ("qy", hdl["ADC_BITS"], hdl["LANES"], True),
        ("sw", scale_w, hdl["LANES"], False),
        ("sx", scale_w, 1, False),
        ("first", 1, 1, False),
        ("last", 1, 1, False),
    )


def output_expected(hdl: dict) -> Layout:
    """One output beat of ``abfp_output_unit``: ``y`` of every lane."""
    return Layout(("y", 1 + hdl["OUT_EXP"] + hdl["OUT_MAN"], hdl["LANES"], False))


def input_stimulus(hdl: dict) -> Layout:
    """One n-element vector for ``abfp_input_unit`` (beat b is bits ``[b*P*IN_W +: P*IN_W]``)."""
    return Layout(("x", 1 + hdl["IN_EXP"] + hdl["IN_MAN"], hdl["N"], False))


def input_expected(hdl: dict) -> Layout:
    """One output beat of ``abfp_input_unit``: codes, scale and the expected sticky flag."""
    return Layout(
        ("code", hdl["DAC_BITS"], hdl["N"], True),
        ("sx", 1 + hdl["SCALE_EXP"] + hdl["SCALE_MAN"], 1, False),
        ("nonfinite", 1, 1, False),
    )


def tile_beats(hdl: dict) -> Layout:
    """An output-unit beat of the end-to-end tile, with the input vector whose ``sx`` it uses."""
    beat = output_stimulus(hdl)
    return Layout(*[(f.name, f.width, f.count, f.signed) for f in beat.fields],
                  ("x_index", 32, 1, False))  # fmt: skip

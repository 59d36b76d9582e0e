"""Wide memory words as bit arrays, and their ``$readmemh`` / ``$writememh`` hex files.

A word is a row of a boolean array, bit 0 (the least significant) first; fields are packed
from the low bits up, each field holding ``lanes`` values of ``width`` bits, lane 0 lowest.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", np.uint8)


def field_bits(values: np.ndarray, width: int) -> np.ndarray:
    """Bits of ``values`` (count, lanes), two's complement allowed: (count, lanes * width)."""
    values = np.asarray(values).astype(np.int64)
    if values.ndim == 1:
        values = values[:, None]
    shifts = np.arange(width, dtype=np.int64)
    bits = (values[:, :, None] >> shifts) & 1
    return bits.reshape(len(values), -1).astype(bool)


def pack_fields(fields: Sequence[tuple[np.ndarray, int]]) -> np.ndarray:
    """Words from ``(values, width)`` fields, the first field in the lowest bits."""
    return np.concatenate([field_bits(values, width) for values, width in fields], axis=1)


def unpack_field(words: np.ndarray, low: int, width: int, lanes: int = 1) -> np.ndarray:
    """Field of ``lanes`` unsigned values of ``width`` bits from bit ``low`` up: (count, lanes)."""
    bits = words[:, low : low + width * lanes].reshape(len(words), lanes, width)
    return (bits.astype(np.uint64) << np.arange(width, dtype=np.uint64)).sum(axis=2)


def write_hex(path: Path, words: np.ndarray) -> None:
    """Write ``words`` as a ``$readmemh`` file (one word a line), replacing ``path`` whole."""
    count, width = words.shape
    digits = -(-width // 4)
    padded = np.zeros((count, digits * 4), bool)
    padded[:, :width] = words
    nibbles = (padded.reshape(count, digits, 4) << np.arange(4)).sum(axis=2)[:, ::-1]
    text = np.full((count, digits + 1), ord("\n"), np.uint8)
    text[:, :digits] = _HEX_DIGITS[nibbles]
    temp = Path(f"{path}.tmp")
    temp.write_bytes(text.tobytes())
    os.replace(temp, path)


def read_hex(path: Path, width: int) -> np.ndarray:
    """Words of ``width`` bits from a ``$writememh`` file (comment and address lines skipped).

    Raises ``ValueError`` naming the file and line when a word holds X/Z or other non-hex
    digits.
    """
    lines = [
        (number, line.strip())
        for number, line in enumerate(Path(path).read_text().splitlines(), 1)
        if line.strip() and not line.lstrip().startswith(("//", "@"))
    ]
    digits = -(-width // 4)
    table = np.full(256, -1, np.int64)
    table[_HEX_DIGITS] = table[np.frombuffer(b"0123456789ABCDEF", np.uint8)] = np.arange(16)
    # every line as exactly `digits` characters (too long ones are reported below)
    text = b"".join(line.encode()[-digits:].rjust(digits, b"0") for _, line in lines)
    codes = table[np.frombuffer(text, np.uint8)].reshape(len(lines), digits)
    bad = (codes < 0).any(axis=1) | np.array([len(line) > digits for _, line in lines], bool)
    if bad.any():
        number, line = lines[int(np.argmax(bad))]
        raise ValueError(f"{path} line {number}: {line!r} is not a {width}-bit hex word")
    words = ((codes[:, ::-1, None] >> np.arange(4)) & 1).reshape(len(lines), digits * 4)
    return words[:, :width].astype(bool)

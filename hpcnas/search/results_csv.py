"""The ``results.csv`` format: cells, and reading a file that a crash or an edit damaged.

A file is a header line, then one row per finished evaluation, each ending with ``\\r\\n``
(Python's ``csv`` default; lines ending with ``\\n`` are read too, and a UTF-8 byte-order mark
before the header is accepted).

Hyper-parameter cells (:func:`encode`):

* an inactive conditional hyper-parameter is an **empty cell**;
* a string is written as it is, except the strings an empty cell or a reader could take for
  something else: ``""``, a string starting with ``"`` and one holding a line break are
  written as JSON text (the empty string is the cell ``""``);
* lists and dicts (architecture sequences) are JSON, floats their ``repr``, the rest ``str``.

Files written before strings were escaped stay readable: a categorical cell is matched
against the choices as written now, then as written then (:func:`decode`).

Reading (:func:`scan`) splits the bytes into lines and keeps each line that is a row of the
header's width as a :class:`Record`; a line that is not -- cut short, unbalanced quotes, bytes
that are not UTF-8, NUL bytes, too many or too few cells -- is :class:`Damaged`, with the reason.
A quoted cell spanning lines (possible in files of older versions) is one record. Deciding
what to do with damaged lines and with values that do not fit is the store's business
(:mod:`hpcnas.search.results_store`).
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from hpcnas.core.trial import CellError, number_cell, reports_cell

__all__ = ["CellError", "Damaged", "Record", "Scan", "choice_cells", "decode", "encode", "encode_text",
           "number_cell", "reports_cell", "scan", "split_lines"]

LINE_END = "\r\n"
BOM = b"\xef\xbb\xbf"
#: at most this many lines are joined to close a quoted cell that spans lines
MAX_RECORD_LINES = 20


@dataclass
class Record:
    """A row: ``cells`` read from ``raw`` (its line(s), terminators included) at line ``number``."""

    number: int
    raw: bytes
    cells: list[str]


@dataclass
class Damaged:
    """Line ``number`` (bytes ``raw``) that is not a row, and why."""

    number: int
    raw: bytes
    reason: str


@dataclass
class Scan:
    """What :func:`scan` found; ``lines`` counts every line (the header and a last one cut short)."""

    header: list[str] | None = None
    header_raw: bytes = b""
    header_error: str | None = None
    body: bytes = b""  # the lines after the header
    bom: bool = False
    records: list[Record] = field(default_factory=list)
    damaged: list[Damaged] = field(default_factory=list)
    blank: list[bytes] = field(default_factory=list)
    lines: int = 0
    terminated: bool = True  # the last line ends with a line break


# ----------------------------------------------------------------- cells
def encode(value: Any) -> str:
    """The cell text of a hyper-parameter value (``None``: inactive, the empty cell)."""
    if value is None:
        return ""
    if isinstance(value, np.generic):  # np.float64 is a float whose repr is 'np.float64(...)'
        value = value.item()
    if isinstance(value, str):
        if value == "" or value.startswith('"') or "\n" in value or "\r" in value:
            return json.dumps(value)
        return value
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, default=_json_default)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def encode_text(value: Any) -> str:
    """The cell text of a result column: like :func:`encode`, line breaks become `` | ``."""
    if isinstance(value, str):
        value = value.replace("\r | ", " | ")  # EvalResult.to_row turned the "\n" of "\r\n" into " | "
        return value.replace("\r\n", " | ").replace("\n", " | ").replace("\r", " | ")
    return encode(value)


def _legacy(value: Any) -> str:
    """The cell text written before strings were escaped."""
    return value if isinstance(value, str) else encode(value)


def choice_cells(hp: Any) -> dict[str, Any] | None:
    """``{cell text: choice}`` of a categorical or ordinal ``hp`` (``None`` for other kinds): the
    cells written now, and those written before strings were escaped where they differ."""
    choices = getattr(hp, "choices", None) or getattr(hp, "sequence", None)
    if choices is None:
        return None
    plain = [c.item() if hasattr(c, "item") else c for c in choices]
    cells: dict[str, Any] = {}
    for c in plain:  # the first choice wins, the current encoding over the old one
        cells.setdefault(encode(c), c)
    for c in plain:
        cells.setdefault(_legacy(c), c)
    return cells


def decode(text: str, hp: Any, cells: dict[str, Any] | None = None) -> Any:
    """The value of a non-empty cell of hyper-parameter ``hp`` (``None``: unknown type).

    ``cells``: :func:`choice_cells` of ``hp`` when the caller keeps it. Raises
    :class:`CellError` when the text is not a value of ``hp``.
    """
    cells = choice_cells(hp) if cells is None else cells
    if cells is not None:
        if text in cells:
            return cells[text]
        shown = ", ".join(encode(c) for c in list(dict.fromkeys(cells.values()))[:8])
        raise CellError(f"holds {text!r}, which is not one of its choices ({shown})")
    kind = type(hp).__name__ if hp is not None else ""
    if "Integer" in kind:
        try:
            number = float(text)
        except ValueError:
            raise CellError(f"holds {text!r}, not an integer") from None
        if not number.is_integer():
            raise CellError(f"holds {text!r}, not an integer")
        return int(number)
    if "Float" in kind:
        return number_cell(text, empty=False)
    if "Constant" in kind:
        return getattr(hp, "value", text)
    return _guess(text)


def _short(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    return str(value)


def _guess(text: str) -> Any:
    if text[:1] in '[{"':
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    if text in ("True", "False"):
        return text == "True"
    return text


# ----------------------------------------------------------------- lines
def split_lines(raw: bytes) -> list[bytes]:
    """``raw`` cut after each ``\\n`` (terminators kept; the last line may lack one)."""
    lines = raw.split(b"\n")
    out = [line + b"\n" for line in lines[:-1]]
    if lines[-1]:
        out.append(lines[-1])
    return out


def _parse(raw: bytes) -> tuple[list[str] | None, str]:
    """The cells of one record in ``raw``, or ``None`` and why not."""
    if b"\x00" in raw:
        return None, "NUL bytes"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, "bytes that are not UTF-8 text"
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as err:
        return None, "unbalanced quotes" if "end of data" in str(err) else f"bad quoting ({err})"
    if len(rows) != 1:
        return None, "a stray carriage return"
    return rows[0], ""


def parse_header(raw: bytes) -> tuple[list[str] | None, str]:
    """The column names of a header line, or ``None`` and why it cannot be read."""
    return _parse(raw)


def scan(raw: bytes, check: Callable[[list[str], list[str]], str | None] | None = None) -> Scan:
    """Read ``raw`` (a whole results.csv): header, rows of its width, damaged lines.

    ``check(header, cells)`` (optional) says what is wrong with a row's values, or ``None``; a
    quoted cell spanning lines is accepted only when the joined row passes it.
    """
    out = Scan()
    if raw.startswith(BOM):
        out.bom, raw = True, raw[len(BOM):]
    lines = split_lines(raw)
    out.lines = len(lines)
    out.terminated = raw.endswith(b"\n") or not raw
    if not lines:
        return out
    first = 0
    while first < len(lines) - 1 and not lines[first].strip(b"\r\n \t"):  # blank lines before the header
        out.blank.append(lines[first])
        first += 1
    out.header_raw = lines[first]
    out.header, why = parse_header(lines[first])
    out.body = b"".join(lines[first + 1:])
    if out.header is None:
        out.header_error = why
        return out
    width = len(out.header)
    i = first + 1
    while i < len(lines):
        line = lines[i]
        if not line.strip(b"\r\n \t"):
            out.blank.append(line)
            i += 1
            continue
        cells, why = _parse(line)
        used = 1
        if cells is None and why == "unbalanced quotes":
            cells, used = _join(lines, i, out.header, check)
        if cells is None:
            out.damaged.append(Damaged(i + 1, line, _reason(why, line)))
        elif len(cells) != width:
            out.damaged.append(Damaged(i + 1, line, _reason(f"{len(cells)} cells, the header has {width}", line)))
        else:
            out.records.append(Record(i + 1, b"".join(lines[i:i + used]), cells))
        i += used
    return out


def _join(lines: list[bytes], i: int, header: list[str],
          check: Callable[[list[str], list[str]], str | None] | None) -> tuple[list[str] | None, int]:
    """A record whose quoted cell spans lines ``i``, ``i+1``, ...; ``(None, 1)`` when there is none."""
    for used in range(2, min(MAX_RECORD_LINES, len(lines) - i) + 1):
        cells, why = _parse(b"".join(lines[i:i + used]))
        if cells is None and why == "unbalanced quotes":
            continue
        if cells is not None and len(cells) == len(header) and (check is None or check(header, cells) is None):
            return cells, used
        break
    return None, 1


def _reason(why: str, line: bytes) -> str:
    return why if line.endswith(b"\n") else f"cut short ({why})"

"""LangSmith's CSV dataset upload (``client.upload_csv``): one example per data row.

The header row names the columns; ``input_keys`` pick the columns that make an example's
inputs and ``output_keys`` those that make its outputs, each as ``{column: cell text}``.
Columns named in neither are ignored, as LangSmith does. Every problem is reported with the
column or the line (1 = the header) it was found on.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from goldloop.domain.errors import InvalidInput

# A cell may be as long as the request body allows (the csv module's default is 128 KiB). The
# limit is process-wide; it is only ever raised, so concurrent readers never see a lower one.
_FIELD_LIMIT = 1 << 30


@dataclass(frozen=True, slots=True)
class CsvExample:
    inputs: dict[str, Any]
    outputs: dict[str, Any] | None


def _check_keys(keys: Sequence[str], field: str) -> None:
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if list(keys).count(k) > 1)
        raise InvalidInput(f"{field} names column {dup!r} twice", details={"field": field})


def parse(data: bytes, input_keys: Sequence[str], output_keys: Sequence[str]) -> list[CsvExample]:
    """The examples of a CSV file, in row order."""
    if not input_keys:
        raise InvalidInput(
            "input_keys must name at least one column", details={"field": "input_keys"}
        )
    _check_keys(input_keys, "input_keys")
    _check_keys(output_keys, "output_keys")
    both = sorted(set(input_keys) & set(output_keys))
    if both:
        raise InvalidInput(
            f"column {both[0]!r} is in both input_keys and output_keys",
            details={"field": "output_keys", "column": both[0]},
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"the CSV file is not UTF-8 text (byte {exc.start})", details={"field": "file"}
        ) from None
    if "\x00" in text:
        raise InvalidInput("the CSV file holds a NUL character", details={"field": "file"})
    if csv.field_size_limit() < _FIELD_LIMIT:
        csv.field_size_limit(_FIELD_LIMIT)
    try:
        return _rows(text, input_keys, output_keys)
    except csv.Error as exc:
        raise InvalidInput(f"the CSV file is malformed: {exc}", details={"field": "file"}) from None


def _rows(text: str, input_keys: Sequence[str], output_keys: Sequence[str]) -> list[CsvExample]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header = next(reader, None)
    if not header:
        raise InvalidInput(
            "the CSV file is empty: it needs a header row", details={"field": "file"}
        )
    header = [h.strip() for h in header]
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise InvalidInput(
                f"the CSV header names column {name!r} twice", details={"field": "file", "line": 1}
            )
        seen.add(name)
    for field, keys in (("input_keys", input_keys), ("output_keys", output_keys)):
        for key in keys:
            if key not in seen:
                raise InvalidInput(
                    f"{field} names column {key!r}, which the CSV header does not have "
                    f"(columns: {', '.join(header)})",
                    details={"field": field, "column": key},
                )
    position = {name: i for i, name in enumerate(header)}
    examples = []
    for row in reader:
        line = reader.line_num
        if not row:
            continue  # a blank line
        if len(row) != len(header):
            raise InvalidInput(
                f"line {line} has {len(row)} cells, the header has {len(header)}",
                details={"field": "file", "line": line},
            )
        inputs = {k: row[position[k]] for k in input_keys}
        outputs = {k: row[position[k]] for k in output_keys} if output_keys else None
        examples.append(CsvExample(inputs, outputs))
    if not examples:
        raise InvalidInput("the CSV file has a header but no rows", details={"field": "file"})
    return examples

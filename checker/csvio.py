"""CSV in and out for audits: find the address column, write result rows."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import Any

from checker.audits import AuditInputError

BATCH = 1000  # rows read, parsed and stored at a time
_HEADER_NAMES = {"email", "e-mail", "email address", "address", "recipient", "mail"}
CSV_COLUMNS = (
    "input",
    "address",
    "domain",
    "method",
    "reason",
    "tls_level",
    "mail",
    "key_type",
    "key_fingerprint",
    "suppression",
    "error",
)


def csv_row(result: dict[str, Any]) -> list[str]:
    """One result as the CSV columns."""
    key = result.get("key") or {}
    suppression = result.get("suppression") or {}
    values = {
        **result,
        "key_type": key.get("type"),
        "key_fingerprint": key.get("fingerprint"),
        "suppression": "/".join(str(v) for v in suppression.values()) if suppression else "",
    }
    return ["" if values.get(c) is None else str(values[c]) for c in CSV_COLUMNS]


def csv_text(rows: Iterable[list[str]]) -> bytes:
    """Rows as CSV bytes (RFC 4180 quoting, CRLF)."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode()


async def csv_batches(path: Path) -> AsyncIterator[list[str]]:
    """Addresses from the `email` column (else the first), a batch at a time, parsed off-loop."""
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
        rows = _addresses(csv.reader(handle))
        while True:
            try:
                batch = await asyncio.to_thread(_take, rows, BATCH)
            except csv.Error as exc:  # e.g. a cell over the csv module's field size limit
                raise AuditInputError(f"the CSV cannot be read: {exc}") from None
            if not batch:
                return
            yield batch


def _addresses(reader: Iterator[list[str]]) -> Iterator[str]:
    first = next(reader, None)
    if first is None:
        return
    lowered = [cell.strip().lower() for cell in first]
    column = next((i for i, c in enumerate(lowered) if c in _HEADER_NAMES), None)
    if column is None:
        column = 0
        if first and "@" in first[0]:
            yield first[0]
    for row in reader:
        if len(row) > column and row[column].strip():
            yield row[column]


def _take(rows: Iterator[str], size: int) -> list[str]:
    batch: list[str] = []
    for value in rows:
        batch.append(value)
        if len(batch) >= size:
            break
    return batch

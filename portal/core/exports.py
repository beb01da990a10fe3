"""Spreadsheet exports for staff: CSV (streamed, with a BOM so Excel reads Chinese) and XLSX.

One function answers both formats; rows are sequences of plain values (str, int, Decimal, date).
Text that starts like a formula is never run as one (CSV: quoted with an apostrophe; XLSX:
written as a string). Every export writes an audit row once its rows have been read.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal

import xlsxwriter
from flask import Response, abort, has_request_context, request, stream_with_context

FORMATS = ("csv", "xlsx")
XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Query-string arguments that page or choose the format rather than filter.
_NOT_FILTERS = frozenset({"page", "before", "after", "fmt"})


def csv_cell(value: object) -> str:
    """A cell as text; one that starts like a formula would run in Excel, so it is quoted."""
    if value is None:
        return ""
    if isinstance(value, int | Decimal | float) and not isinstance(value, bool):
        return str(value)  # a negative number is a number, not a formula
    text = str(value)
    return "'" + text if text[:1] in _FORMULA_START else text


def _csv_chunks(header: Sequence[str], rows: Iterable[Sequence[object]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([csv_cell(title) for title in header])
    yield "\ufeff" + buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    try:
        for row in rows:
            writer.writerow([csv_cell(value) for value in row])
            if buffer.tell() > 32_000:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
    finally:
        # A download cancelled mid-stream closes this generator: close the rows now, while the
        # request is still there, so that their audit row is written with it.
        close = getattr(rows, "close", None)
        if close is not None:
            close()
    yield buffer.getvalue()


def _xlsx_bytes(sheet: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    output = io.BytesIO()
    workbook = xlsxwriter.Workbook(
        output,
        {
            "in_memory": True,
            "constant_memory": True,  # rows are flushed as written: flat memory for long exports
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
        },
    )
    worksheet = workbook.add_worksheet(sheet[:31])
    bold = workbook.add_format({"bold": True})
    for col, title in enumerate(header):
        worksheet.write_string(0, col, str(title), bold)
    for r, row in enumerate(rows, start=1):
        for col, value in enumerate(row):
            if value is None:
                continue
            if isinstance(value, bool):
                worksheet.write_boolean(r, col, value)
            elif isinstance(value, int | float | Decimal):
                worksheet.write_number(r, col, float(value))
            elif isinstance(value, datetime):
                worksheet.write_string(r, col, value.strftime("%Y-%m-%d %H:%M"))
            elif isinstance(value, date):
                worksheet.write_string(r, col, value.isoformat())
            else:
                worksheet.write_string(r, col, str(value))
    workbook.close()
    return output.getvalue()


def filter_summary() -> str:
    """The request's filters as ``key=value`` pairs (blank ones and paging left out)."""
    if not has_request_context():
        return ""
    pairs = sorted(
        (key, value)
        for key, value in request.args.items(multi=True)
        if value and key not in _NOT_FILTERS
    )
    return " ".join(f"{key}={value}" for key, value in pairs)


def audited(name: str, rows: Iterable[Sequence[object]]) -> Iterator[Sequence[object]]:
    """``rows`` passed through and counted; when reading them ends, an "export" audit row names
    the export, its filters and the row count (outcome "failed" if the reading stopped early:
    an error, or a download cancelled mid-stream)."""
    from portal.trust.audit import record_now

    filters = filter_summary()  # read now: a streamed answer outlives the view

    def counted() -> Iterator[Sequence[object]]:
        count, complete = 0, False
        try:
            for row in rows:
                count += 1
                yield row
            complete = True
        finally:
            record_now(
                "export",
                "ok" if complete else "failed",
                target_type="export",
                detail=f"{name} [{filters}] rows={count}" if filters else f"{name} rows={count}",
            )

    return counted()


def export_response(
    stem: str, fmt: str, header: Sequence[str], rows: Iterable[Sequence[object]]
) -> Response:
    """A download of ``rows`` as ``<stem>.csv`` or ``<stem>.xlsx`` (audited); 404 for another
    format."""
    if fmt not in FORMATS:
        abort(404)
    rows = audited(stem, rows)
    if fmt == "csv":
        response = Response(stream_with_context(_csv_chunks(header, rows)), mimetype="text/csv")
    elif fmt == "xlsx":
        response = Response(_xlsx_bytes(stem, header, rows), mimetype=XLSX_MIMETYPE)
    response.headers["Content-Disposition"] = f'attachment; filename="{stem}.{fmt}"'
    response.headers["Cache-Control"] = "no-store"
    return response

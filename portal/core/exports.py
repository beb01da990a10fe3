"""Spreadsheet exports for staff: CSV (streamed, with a BOM so Excel reads Chinese) and XLSX.

One function answers both formats; rows are sequences of plain values (str, int, Decimal, date).
Text that starts like a formula is never run as one (CSV: quoted with an apostrophe; XLSX:
written as a string).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal

import xlsxwriter
from flask import Response, abort, stream_with_context

FORMATS = ("csv", "xlsx")
XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


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
    for row in rows:
        writer.writerow([csv_cell(value) for value in row])
        if buffer.tell() > 32_000:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
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


def export_response(
    stem: str, fmt: str, header: Sequence[str], rows: Iterable[Sequence[object]]
) -> Response:
    """A download of ``rows`` as ``<stem>.csv`` or ``<stem>.xlsx``; 404 for another format."""
    if fmt == "csv":
        response = Response(stream_with_context(_csv_chunks(header, rows)), mimetype="text/csv")
    elif fmt == "xlsx":
        response = Response(_xlsx_bytes(stem, header, rows), mimetype=XLSX_MIMETYPE)
    else:
        abort(404)
    response.headers["Content-Disposition"] = f'attachment; filename="{stem}.{fmt}"'
    response.headers["Cache-Control"] = "no-store"
    return response

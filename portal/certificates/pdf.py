"""The certificate as an A4 PDF (reportlab platypus), with an embedded CJK font and a QR code
of its verification address.

The document is always in Chinese, whatever language the viewer uses: it is handed to
schools, employers and party branches, and its wording follows the national rules for
volunteer service records and certificates (民政部《志愿服务记录与证明出具办法》). Its fixed
wording therefore lives in ``WORDING`` below, as a document format, not in the interface's
translation catalogue: a missing translation must never turn an official document into
English. What it states comes from the certificate's stored snapshot, so the same certificate
always renders the same text.
"""

from __future__ import annotations

import io
import logging
import os
import threading
from decimal import Decimal
from xml.sax.saxutils import escape

import segno
from flask import current_app
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import (
    CondPageBreak,
    Flowable,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from portal.certificates.models import Certificate
from portal.core.timeutil import to_local

log = logging.getLogger(__name__)

# Debian's fonts-wqy-microhei: a TrueType collection reportlab can embed (subset) in the PDF.
WQY_MICROHEI = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
# Not embedded: the reader's own Song font shows it (text stays correct and extractable).
CID_FALLBACK = "STSong-Light"

WORDING = {
    "title": "志愿服务时长证明",
    "number": "证明编号",
    "holder": "姓名",
    "id_number": "公民身份号码",
    "not_given": "未提供",
    "period": "服务期间",
    "total": "志愿服务时长合计",
    "count": "服务活动次数",
    "issuer": "出具单位",
    "issued_on": "出具日期",
    "hours_unit": "小时",
    "times_unit": "次",
    "to": "至",
    "body": "兹证明{holder}{id_part}于{start}至{end}期间参加志愿服务活动{count}次，"
    "经服务记录核实，累计志愿服务时长{hours}小时。",
    "id_part": "（公民身份号码：{id_number}）",
    "closing": "特此证明。",
    "activities": "附：志愿服务活动记录",
    "col_no": "序号",
    "col_date": "日期",
    "col_kind": "类别",
    "col_title": "活动内容",
    "col_hours": "时长（小时）",
    "sum_row": "合计",
    "seal": "（盖章）",
    "verify": "本证明的真伪及所载内容可通过以下网址核验，或扫描右侧二维码：",
    "basis": "依据民政部《志愿服务记录与证明出具办法》出具",
    "page": "第{page}页",
}
KIND_WORDING = {
    "patrol": "治安巡逻",
    "door_watch": "挨户防",
    "duty": "值守勤务",
    "help": "邻里互助",
    "mediation": "矛盾调解",
    "party_report": "党员报到",
    "adjustment": "补录时长",
}

_lock = threading.Lock()
_registered: dict[str, str] = {}  # font file -> registered font name
_unusable: set[str] = set()  # tried once, refused: not tried (nor warned about) again
_cid_warned = False


def _candidates() -> list[str]:
    configured = current_app.config.get("CERTIFICATE_FONT")
    return [path for path in (configured, WQY_MICROHEI) if path]


def font_name() -> str:
    """Register the CJK font once per process and return its name: the configured file, then
    wqy-microhei, else the built-in (not embedded) CID font with a warning logged once."""
    global _cid_warned
    with _lock:
        for path in _candidates():
            if path in _registered:
                return _registered[path]
            if path in _unusable or not os.path.isfile(path):
                continue
            name = f"CertificateCJK{len(_registered) + 1}"
            try:
                # A .ttc holds several faces; the first is the regular one. CFF-based (.otf/
                # Noto .ttc) files are refused by reportlab and skipped here.
                pdfmetrics.registerFont(TTFont(name, path, subfontIndex=0))
            except Exception as error:  # noqa: BLE001 (reportlab raises several kinds)
                log.warning("certificate font %s is not usable: %s", path, error)
                _unusable.add(path)
                continue
            _registered[path] = name
            return name
        if CID_FALLBACK not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(UnicodeCIDFont(CID_FALLBACK))
        if not _cid_warned:
            _cid_warned = True
            log.warning(
                "no TrueType CJK font found (set CERTIFICATE_FONT or install fonts-wqy-microhei);"
                " certificates use the non-embedded %s",
                CID_FALLBACK,
            )
        return CID_FALLBACK


def _styles(font: str) -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("base", fontName=font, fontSize=11, leading=17, wordWrap="CJK")
    return {
        "base": base,
        "title": ParagraphStyle(
            "title", parent=base, fontSize=24, leading=32, alignment=TA_CENTER, spaceAfter=4
        ),
        "number": ParagraphStyle("number", parent=base, fontSize=10, alignment=TA_CENTER),
        "body": ParagraphStyle(
            "body", parent=base, fontSize=12.5, leading=22, firstLineIndent=25, spaceBefore=10
        ),
        "heading": ParagraphStyle(
            "heading", parent=base, fontSize=13, leading=20, spaceBefore=12, spaceAfter=6
        ),
        "cell": ParagraphStyle("cell", parent=base, fontSize=10, leading=14),
        "right": ParagraphStyle("right", parent=base, fontSize=12, leading=20, alignment=TA_RIGHT),
        "small": ParagraphStyle("small", parent=base, fontSize=9, leading=13),
    }


def _zh_date(day) -> str:  # noqa: ANN001 (date)
    return f"{day.year}年{day.month:02d}月{day.day:02d}日"


def _hours(value) -> str:  # noqa: ANN001 (Decimal or str)
    return str(Decimal(str(value)).quantize(Decimal("0.01")))


def _p(text: str, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape(text), style)


class QrCode(Flowable):
    """The verification address as a QR code, drawn as vector squares (segno encodes it;
    reportlab's own encoder is several times slower)."""

    def __init__(self, data: str, size: float):
        super().__init__()
        self.matrix = segno.make(data, error="m", micro=False).matrix
        self.size = size
        self.width = self.height = size

    def draw(self) -> None:
        quiet = 2  # modules of white border inside the box
        count = len(self.matrix) + 2 * quiet
        module = self.size / count
        canvas = self.canv
        canvas.setFillColor(colors.black)
        for row_index, row in enumerate(self.matrix):
            y = self.size - (row_index + quiet + 1) * module
            start = None
            # One rectangle per run of dark modules keeps the page small.
            for col_index, dark in enumerate([*row, 0]):
                if dark and start is None:
                    start = col_index
                elif not dark and start is not None:
                    x = (start + quiet) * module
                    # A hair taller than a module: no pale seams between rows when scaled.
                    width = (col_index - start) * module
                    canvas.rect(x, y - 0.02 * module, width, module * 1.04, stroke=0, fill=1)
                    start = None


GRID = colors.HexColor("#8a8a8a")
HEAD = colors.HexColor("#f4f1ec")


def _facts(cert: Certificate, issued_on: str, s: dict) -> Table:
    w = WORDING
    rows = [
        (w["number"], cert.number),
        (w["holder"], cert.holder_name),
        (w["id_number"], cert.id_number_masked or w["not_given"]),
        (w["period"], f"{_zh_date(cert.period_start)}{w['to']}{_zh_date(cert.period_end)}"),
        (w["total"], f"{_hours(cert.total_hours)} {w['hours_unit']}"),
        (w["count"], f"{cert.activity_count} {w['times_unit']}"),
        (w["issuer"], cert.community_name),
        (w["issued_on"], issued_on),
    ]
    table = Table(
        [[_p(k, s["cell"]), _p(v, s["cell"])] for k, v in rows],
        colWidths=[42 * mm, None],
        hAlign="LEFT",
    )
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.5, GRID),
                ("BACKGROUND", (0, 0), (0, -1), HEAD),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ]
        )
    )
    return table


def _activity_table(cert: Certificate, font: str, s: dict) -> Table:
    w = WORDING
    rows: list[list] = [[w["col_no"], w["col_date"], w["col_kind"], w["col_title"], w["col_hours"]]]
    # Plain strings where nothing wraps (much faster than a Paragraph per cell); titles wrap.
    for index, item in enumerate(cert.activities or [], start=1):
        kind = item.get("kind", "")
        rows.append(
            [
                str(index),
                item.get("date", ""),
                KIND_WORDING.get(kind, kind),
                _p(item.get("title", ""), s["cell"]),
                _hours(item.get("hours", "0")),
            ]
        )
    rows.append(["", "", "", w["sum_row"], _hours(cert.total_hours)])
    # The header row repeats on every page the list runs over.
    table = Table(
        rows,
        colWidths=[13 * mm, 26 * mm, 24 * mm, None, 24 * mm],
        repeatRows=1,
        hAlign="LEFT",
    )
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), font),
                ("FONTSIZE", (0, 0), (-1, -1), 10),
                ("LEADING", (0, 0), (-1, -1), 14),
                ("GRID", (0, 0), (-1, -1), 0.5, GRID),
                ("BACKGROUND", (0, 0), (-1, 0), HEAD),
                ("BACKGROUND", (0, -1), (-1, -1), HEAD),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ]
        )
    )
    return table


def render_certificate(cert: Certificate, verify_url: str) -> bytes:
    """The certificate's PDF: statement, facts, the verification address as text and QR code,
    issuer and date, then the list of activities (over as many pages as it needs)."""
    font = font_name()
    s = _styles(font)
    w = WORDING
    issued_on = _zh_date(to_local(cert.issued_at).date())
    id_part = w["id_part"].format(id_number=cert.id_number_masked) if cert.id_number_masked else ""
    statement = w["body"].format(
        holder=cert.holder_name,
        id_part=id_part,
        start=_zh_date(cert.period_start),
        end=_zh_date(cert.period_end),
        count=cert.activity_count,
        hours=_hours(cert.total_hours),
    )
    content_width = A4[0] - 40 * mm
    qr_size = 30 * mm
    verify = Table(
        [
            [
                [_p(w["verify"], s["small"]), Spacer(1, 2), _p(verify_url, s["small"])],
                QrCode(verify_url, qr_size),
            ]
        ],
        colWidths=[content_width - qr_size - 4 * mm, qr_size + 4 * mm],
        hAlign="LEFT",
    )
    verify.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("LEFTPADDING", (0, 0), (0, 0), 0),
                ("RIGHTPADDING", (-1, 0), (-1, 0), 0),
            ]
        )
    )
    story = [
        _p(w["title"], s["title"]),
        _p(f"{w['number']}：{cert.number}", s["number"]),
        _p(statement, s["body"]),
        _p(w["closing"], s["body"]),
        Spacer(1, 5 * mm),
        _facts(cert, issued_on, s),
        Spacer(1, 3 * mm),
        verify,
        KeepTogether(
            [
                Spacer(1, 4 * mm),
                _p(f"{w['issuer']}：{cert.community_name}{w['seal']}", s["right"]),
                _p(f"{w['issued_on']}：{issued_on}", s["right"]),
            ]
        ),
        # The activities follow as the certificate's annex, over as many pages as needed; a
        # new page only when not even the heading and a few rows fit.
        CondPageBreak(45 * mm),
        _p(w["activities"], s["heading"]),
        _activity_table(cert, font, s),
    ]

    def footer(canvas, doc) -> None:  # noqa: ANN001 (reportlab canvas and document)
        canvas.saveState()
        canvas.setFont(font, 8)
        canvas.setFillColor(colors.HexColor("#3d3d3d"))
        canvas.drawString(20 * mm, 12 * mm, f"{w['number']}：{cert.number}　{w['basis']}")
        canvas.drawRightString(A4[0] - 20 * mm, 12 * mm, w["page"].format(page=doc.page))
        canvas.restoreState()

    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=20 * mm,
        bottomMargin=22 * mm,
        title=f"{w['title']} {cert.number}",
        author=cert.community_name,
        subject=w["title"],
        creator="Tongxin",
        lang="zh-CN",
    )
    document.build(story, onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()

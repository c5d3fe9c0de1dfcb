"""The printable transcript: a PDF made with reportlab's platypus from services.transcripts data.

Made for paper: 10 pt body text with 13 pt leading, black on white, no color needed to read a state (it is
written out), tables that split across pages with their header row repeated, and on every page the technician's
name, "Page n of N", the verification link and a QR code of it. US Letter (default) or A4.
"""
import io
from itertools import groupby
from xml.sax.saxutils import escape

import segno
from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.pagesizes import A4, LETTER
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen import canvas as pdfcanvas
from reportlab.platypus import KeepTogether, LongTable, Paragraph, SimpleDocTemplate, Spacer, TableStyle
from reportlab.platypus.tables import CellStyle

from ..formatting import us_date
from ..i18n import gettext as _

PAGE_SIZES = {"a4": A4, "letter": LETTER}
MARGIN = 18 * mm
FOOTER_HEIGHT = 30 * mm


def _styles():
    base = getSampleStyleSheet()
    body = ParagraphStyle("body", parent=base["Normal"], fontName="Helvetica", fontSize=10, leading=13,
                          alignment=TA_LEFT)
    return {
        "title": ParagraphStyle("title", parent=base["Title"], fontName="Helvetica-Bold", fontSize=18, leading=22,
                                alignment=TA_LEFT, spaceAfter=4),
        "h2": ParagraphStyle("h2", parent=base["Heading2"], fontName="Helvetica-Bold", fontSize=13, leading=16,
                             spaceBefore=10, spaceAfter=4),
        "h3": ParagraphStyle("h3", parent=base["Heading3"], fontName="Helvetica-Bold", fontSize=11, leading=14,
                             spaceBefore=6, spaceAfter=2),
        "body": body,
        "cell": ParagraphStyle("cell", parent=body, fontSize=8.5, leading=10.5),
        "head": ParagraphStyle("head", parent=body, fontName="Helvetica-Bold", fontSize=8.5, leading=10.5),
        "muted": ParagraphStyle("muted", parent=body, fontSize=9, leading=12, textColor=colors.HexColor("#333333")),
    }


def fmt_date(value) -> str:
    """'Jan 15, 2025'; empty for None (one date style for pages and PDFs: lti_tool.formatting)."""
    return us_date(value)


class _Paragraph(Paragraph):
    """A paragraph that remembers its last wrap: a table measures every remaining row again each time it splits
    across a page, which made long transcripts cost quadratically in their rows."""

    _wrapped = None

    def wrap(self, availWidth, availHeight):  # noqa: N803 (reportlab's names)
        # reportlab drops blPara when it splits or re-flows a paragraph: then the wrap must be done again.
        if self._wrapped is None or self._wrapped[0] != availWidth or not hasattr(self, "blPara"):
            self._wrapped = (availWidth, super().wrap(availWidth, availHeight))
        return self._wrapped[1]


def _p(text, style) -> Paragraph:
    return _Paragraph(escape(str(text)) if text is not None else "", style)


CELL_PADDING = 3


def _cell(value, width, style):
    """A table cell: text that fits on one line is drawn as a plain string (no paragraph parsing or line
    breaking, which were most of a transcript's time); longer text wraps in a paragraph."""
    if isinstance(value, Paragraph):
        return value
    text = "" if value is None else str(value)
    if "\n" not in text and stringWidth(text, style.fontName, style.fontSize) <= width - 2 * CELL_PADDING:
        return text
    return _p(text, style)


def _cell_style(name: str, style: ParagraphStyle) -> CellStyle:
    cell = CellStyle(name)
    cell.fontname, cell.fontsize, cell.leading = style.fontName, style.fontSize, style.leading
    cell.valign = "TOP"
    cell.leftPadding = cell.rightPadding = CELL_PADDING
    cell.topPadding = cell.bottomPadding = 2
    return cell


# Every table's cells share two cell styles (header, body) instead of a style object per cell that font, padding
# and alignment commands then set one cell at a time: that was a quarter of a long transcript's time. Nothing
# changes a shared style afterwards (the tables get line and background commands only).
_TABLE_LINES = TableStyle([
    ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#777777")),
    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e6e6e6")),
])


def _table(header, rows, widths, styles) -> LongTable:
    data = [[_cell(h, width, styles["head"]) for h, width in zip(header, widths, strict=True)]]
    data += [[_cell(c, width, styles["cell"]) for c, width in zip(row, widths, strict=True)] for row in rows]
    head, body = _cell_style("head", styles["head"]), _cell_style("body", styles["cell"])
    cell_styles = [[head] * len(widths)] + [[body] * len(widths) for _ in rows]
    table = LongTable(data, colWidths=widths, repeatRows=1, splitByRow=1, cellStyles=cell_styles)
    table.setStyle(_TABLE_LINES)
    return table


def _numbered_canvas(footer):
    """A canvas that knows the page count when it draws each page's footer (two-pass over saved page states)."""

    class NumberedCanvas(pdfcanvas.Canvas):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._pages = []

        def showPage(self):  # noqa: N802 (reportlab's name)
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self):
            total = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                footer(self, total)
                super().showPage()
            super().save()

    return NumberedCanvas


QR_SIDE = 24 * mm
QR_BORDER = 4  # modules of quiet zone (the standard's minimum), inside the printed square


def _qr_runs(url: str) -> tuple[int, list[tuple[int, int, int]]]:
    """(modules per side including the border, [(row, first column, length)] of each horizontal run of dark
    modules, row 0 at the top). segno encodes the URL (error correction M, as printed codes usually are) in about
    5 ms; reportlab's own widget took 20 ms to encode and 10 ms to draw its 400-odd squares one by one."""
    matrix = segno.make_qr(url, error="m", boost_error=False).matrix
    runs = []
    for y, row in enumerate(matrix):
        x = 0
        for dark, modules in groupby(row):
            length = len(list(modules))
            if dark:
                runs.append((y + QR_BORDER, x + QR_BORDER, length))
            x += length
    return len(matrix) + 2 * QR_BORDER, runs


def _draw_qr(canv, url: str, side: float) -> None:
    """The code as one filled path of rectangles (a run of dark modules per rectangle), in a side x side square
    with its lower-left corner at the origin."""
    modules, runs = _qr_runs(url)
    unit = side / modules
    path = canv.beginPath()
    for y, x, length in runs:
        path.rect(x * unit, side - (y + 1) * unit, length * unit, unit)
    canv.setFillColor(colors.black)
    canv.drawPath(path, stroke=0, fill=1)


def _footer_drawer(transcript, verify_url, page_size):
    width, _height = page_size
    side = QR_SIDE
    name = transcript["person"]["name"]
    form = {"defined": False}

    def footer(canv, total):
        if not form["defined"]:
            # The QR code is drawn once as a form XObject and placed on every page: drawing its modules on each
            # page took a third of the time of a long transcript.
            canv.beginForm("verify-qr", 0, 0, side, side)
            _draw_qr(canv, verify_url, side)
            canv.endForm()
            form["defined"] = True
        canv.saveState()
        canv.setStrokeColor(colors.HexColor("#777777"))
        canv.line(MARGIN, FOOTER_HEIGHT, width - MARGIN, FOOTER_HEIGHT)
        canv.translate(width - MARGIN - side, 4 * mm)
        canv.doForm("verify-qr")
        canv.translate(-(width - MARGIN - side), -4 * mm)
        canv.setFont("Helvetica-Bold", 9)
        canv.drawString(MARGIN, FOOTER_HEIGHT - 6 * mm, _("Transcript of %(name)s", name=name)[:90])
        canv.setFont("Helvetica", 8.5)
        canv.drawString(MARGIN, FOOTER_HEIGHT - 11 * mm, _("Verify this transcript (scan the code or open):"))
        canv.drawString(MARGIN, FOOTER_HEIGHT - 15.5 * mm, verify_url)
        canv.drawString(MARGIN, FOOTER_HEIGHT - 21 * mm, _("Page %(page)d of %(total)d", page=canv.getPageNumber(),
                                                             total=total))
        canv.restoreState()

    return footer


def _summary(transcript, styles):
    person = transcript["person"]
    counts = transcript["counts"]
    lines = [
        f"<b>{_('Technician:')}</b> {escape(person['name'])}" + (f" ({escape(person['email'])})"
                                                                 if person.get("email") else ""),
        f"<b>{_('Organization:')}</b> {escape(transcript['organization'])}",
        f"<b>{_('As of:')}</b> {fmt_date(transcript['as_of'])} &nbsp; <b>{_('Records from:')}</b> "
        f"{escape(transcript['scope'])}",
        f"<b>{_('Competencies held:')}</b> "
        + _("%(held)d of %(total)d signed off; %(attestations)d attestations; %(evidence)d evidence items listed.",
            held=counts["held"], total=counts["competencies"], attestations=counts["attestations"],
            evidence=counts["evidence"]),
    ]
    return [Paragraph(line, styles["body"]) for line in lines]


def _competency_section(transcript, styles, usable):
    out = [Paragraph(_("Competencies and sign-offs"), styles["h2"])]
    if not transcript["competencies"]:
        return out + [_p(_("No competency has been signed off yet."), styles["body"])]
    widths = [usable * f for f in (0.17, 0.12, 0.12, 0.13, 0.20, 0.12, 0.14)]
    for entry in transcript["competencies"]:
        head = (f"{escape(entry['code'])} {escape(entry['title'])} — {escape(_(entry['status_label']))}"
                + (_(", expires %(date)s", date=fmt_date(entry["expires_at"]))
                   if entry.get("expires_at") and entry["held"] else ""))
        rows = []
        for att in entry["attestations"]:
            state = _(att["state_label"])
            if att["state"] == "revoked":
                state += f" {fmt_date(att['revoked_at'])}: {att['revocation_reason']}"
            elif att["state"] == "corrected":
                state += " " + _("by a later sign-off")
            if att.get("corrects_id"):
                state += " " + _("(correction: %(reason)s)",
                                 reason=att.get("correction_reason") or _("no reason given"))
            rows.append([f"{att['signer_name']}", _(att["signer_role_label"]), fmt_date(att["signed_at"]),
                         _(att["method_label"]), f"{att['evidence_title']} ({_(att['evidence_kind_label'])})",
                         fmt_date(att["expires_at"]) or _("No expiry"), f"{att['rating_label']}. {state}"])
        out.append(KeepTogether([Paragraph(head, styles["h3"]),
                                 _table([_("Signed by"), _("Role"), _("Signed"), _("Method"), _("Evidence"),
                                         _("Expires"),
                                         _("Rating and state")], rows[:3], widths, styles)]))
        if len(rows) > 3:
            out.append(_table([_("Signed by"), _("Role"), _("Signed"), _("Method"), _("Evidence"), _("Expires"),
                               _("Rating and state")],
                              rows[3:], widths, styles))
    return out


def _cross_training(transcript, styles, usable):
    out = [Paragraph(_("Cross-training by department"), styles["h2"])]
    if not transcript["cross_training"]:
        return out + [_p(_("None recorded."), styles["body"])]
    widths = [usable * f for f in (0.26, 0.30, 0.16, 0.08, 0.20)]
    for group in transcript["cross_training"]:
        rows = [[i["title"], "; ".join(i.get("skills") or []), i.get("trainer_name") or "",
                 i.get("hours") if i.get("hours") is not None else "",
                 f"{fmt_date(i.get('start_date'))} – {fmt_date(i.get('end_date'))}. {_(i['status_label'])}"]
                for i in group["items"]]
        out += [Paragraph(escape(group["department"]), styles["h3"]),
                _table([_("Training"), _("Skills"), _("Trainer"), _("Hours"), _("Dates and status")], rows, widths,
                       styles)]
    return out


def _simple_section(title, items, header, row_of, fractions, styles, usable):
    out = [Paragraph(title, styles["h2"])]
    if not items:
        return out + [_p(_("None recorded."), styles["body"])]
    return out + [_table(header, [row_of(i) for i in items], [usable * f for f in fractions], styles)]


def _ce_section(transcript, styles, usable):
    """CE as services.ce.report gives it (the same numbers as the dashboard and the transcript page): per cycle,
    recorded and verified hours side by side, then the activities."""
    ce = transcript["continuing_education"]
    out = [Paragraph(_("Continuing education"), styles["h2"])]
    for warning in ce.get("warnings") or []:
        out.append(_p(_("Warning: %(warning)s", warning=warning), styles["body"]))
    for status in ce.get("cycles") or [ce["status"]]:
        source = (_("from the verified %(credential)s", credential=status["certification"]["label"])
                  if status.get("known") else _("assumed: no verified certification"))
        out.append(Paragraph(f"<b>{escape(status['name'])}</b>, " + escape(_(
            "cycle %(start)s to %(end)s (%(source)s).", start=fmt_date(status["cycle_start"]),
            end=fmt_date(status["cycle_end"]), source=source)), styles["body"]))
        recorded, verified = status["recorded"], status["verified"]
        rows = [["All CE hours", f"{recorded['hours']:g}", f"{verified['hours']:g}", f"{verified['required_hours']:g}"]]
        rows += [[_(r["label"]), f"{sent['hours']:g}", f"{r['hours']:g}",
                  _("at least %(hours)s", hours=f"{r['min_hours']:g}")]
                 for r, sent in zip(verified["requirements"], recorded["requirements"], strict=True)]
        out.append(_table([_("Hours"), _("Recorded (sent for review or signed off)"), _("Verified (signed off)"),
                           _("Needed")],
                          rows, [usable * f for f in (0.40, 0.22, 0.20, 0.18)], styles))
        out.append(_p(_("Recorded: %(recorded)s of %(needed)s hours. Verified: %(verified)s of %(needed)s hours.",
                        recorded=f"{recorded['hours']:g}", verified=f"{verified['hours']:g}",
                        needed=f"{verified['required_hours']:g}") + f" {verified['summary']}", styles["body"]))
    out.append(Spacer(1, 4))
    activities = _simple_section(_("CE activities"), ce["activities"], [_("Activity"), _("UAN"), _("Hours"),
                                                                     _("Completed"),
                                                                     _("Status")],
                                 lambda i: [i["title"] + (f" ({i['provider_name']})" if i.get("provider_name") else ""),
                                            i.get("uan") or "", i.get("hours") if i.get("hours") is not None else "",
                                            fmt_date(i.get("completion_date")), _(i["status_label"])],
                                 (0.40, 0.24, 0.08, 0.13, 0.15), styles, usable)
    activities[0] = Paragraph(_("CE activities (sent for review or signed off, all cycles)"), styles["h3"])
    return out + activities


def render(transcript: dict, verify_url: str, page_size: str = "letter", out=None) -> bytes | None:
    """Render the PDF. Writes to `out` (a binary file object) when given and returns None; else returns bytes."""
    size = PAGE_SIZES[page_size]
    styles = _styles()
    usable = size[0] - 2 * MARGIN
    target = out if out is not None else io.BytesIO()
    doc = SimpleDocTemplate(target, pagesize=size, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN,
                            bottomMargin=FOOTER_HEIGHT + 6 * mm,
                            title=_("Transcript of %(name)s", name=transcript["person"]["name"]),
                            author=transcript["organization"], subject=_("Pharmacy technician competency transcript"),
                            creator="Pharmacy Tech Pathways")
    story = [Paragraph(_("Competency transcript"), styles["title"]), *_summary(transcript, styles)]
    story += _competency_section(transcript, styles, usable)
    story += _cross_training(transcript, styles, usable)
    story += _simple_section(
        _("Responsibilities"), transcript["responsibilities"],
        [_("Responsibility"), _("Scope"), _("Supervisor"), _("Dates")],
        lambda i: [f"{i['title']} ({i.get('role_label') or ''})", i.get("scope") or "", i.get("supervisor") or "",
                   f"{fmt_date(i.get('start_date'))} – {fmt_date(i.get('end_date')) or _('ongoing')}. "
                   f"{_(i['status_label'])}"], (0.28, 0.38, 0.14, 0.20), styles, usable)
    story += _simple_section(
        _("Quality-improvement projects"), transcript["qi_projects"],
        [_("Project"), _("Aim"), _("Role and results"), _("Cycles")],
        lambda i: [i["title"], i.get("aim") or "", f"{i.get('role') or ''}. {i.get('results') or ''}",
                   _("%(n)s PDSA, last %(date)s.", n=i.get("pdsa_cycles", 0), date=fmt_date(i.get("last_cycle_date")))
                   + f" {_(i['status_label'])}"],
        (0.22, 0.28, 0.32, 0.18), styles, usable)
    story += _simple_section(
        _("Certifications"), transcript["certifications"],
        [_("Credential"), _("Number"), _("Issued by"), _("Issued"), _("Expires"),
                                                         _("Status")],
        lambda i: [i.get("credential_label") or i["title"], i.get("number") or "", i.get("issuer") or "",
                   fmt_date(i.get("issued_date")), fmt_date(i.get("expiry_date")) or _("No expiry"),
                   (_("Expired.") + " " if i.get("expired") else "") + _(i["status_label"])],
        (0.30, 0.14, 0.20, 0.11, 0.11, 0.14), styles, usable)
    story += _ce_section(transcript, styles, usable)
    story += [Spacer(1, 8), Paragraph(
        _("Each sign-off records who signed, their role at the time, when and how, and a SHA-256 fingerprint of the "
        "evidence they saw. Scan the code or open the link below to check that this transcript was issued by the "
        "tool and whether any sign-off on it has since been revoked or corrected."), styles["muted"])]
    doc.build(story, canvasmaker=_numbered_canvas(_footer_drawer(transcript, verify_url, size)))
    if out is None:
        return target.getvalue()
    return None

"""Printable reports (US Letter, reportlab platypus): the competency roster, the compliance summary and the
person file. Black on white, states written out (never color alone), header rows repeated on every page, and a
footer with the course, the as-of date, when it was printed and "Page n of N"."""
import io
from datetime import UTC, datetime
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import LETTER, landscape
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import inch
from reportlab.pdfgen import canvas as pdfcanvas
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer

from . import audit_log, localtime, report_chart
from .reports import STANDING_LABELS, PersonFile, Roster, Summary, standing_label

# One table builder for every PDF: plain strings where they fit, shared cell styles.
from .transcript_pdf import _table

MARGIN = 0.6 * inch


def _styles():
    base = getSampleStyleSheet()
    body = ParagraphStyle("body", parent=base["Normal"], fontName="Helvetica", fontSize=9.5, leading=12)
    return {
        "title": ParagraphStyle("title", parent=body, fontName="Helvetica-Bold", fontSize=16, leading=20,
                                spaceAfter=4),
        "h2": ParagraphStyle("h2", parent=body, fontName="Helvetica-Bold", fontSize=12, leading=15, spaceBefore=10,
                             spaceAfter=4),
        "body": body,
        "cell": ParagraphStyle("cell", parent=body, fontSize=8, leading=10),
        "head": ParagraphStyle("head", parent=body, fontName="Helvetica-Bold", fontSize=8, leading=10),
    }


def _p(text, style) -> Paragraph:
    return Paragraph(escape("" if text is None else str(text)), style)


def _cut(value, limit: int) -> str:
    text = "" if value is None else " ".join(str(value).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _build(story, footer: str, pagesize) -> bytes:
    """The document, with "Page n of N" (a canvas that draws footers once the page count is known)."""

    class Numbered(pdfcanvas.Canvas):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._pages = []

        def showPage(self):  # noqa: N802 - reportlab's name
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self):
            total = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                self.setFont("Helvetica", 7.5)
                self.drawString(MARGIN, 0.4 * inch, footer)
                self.drawRightString(pagesize[0] - MARGIN, 0.4 * inch, f"Page {self._pageNumber} of {total}")
                super().showPage()
            super().save()

    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=pagesize, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN,
                            bottomMargin=0.8 * inch, title=footer, author="Pharmacy Tech Pathways")
    doc.build(story, canvasmaker=Numbered)
    return out.getvalue()


def _footer(course, day, tz) -> str:
    printed = localtime.us_datetime(datetime.now(UTC), tz)
    return f"{course.display_title} · as of {localtime.us_date(day)} · printed {printed}"


ROSTER_COLUMNS = [("Technician", 1.5), ("Competency", 2.4), ("Standing", 1.35), ("Last assessed", 0.85),
                  ("Assessor", 1.25), ("Role", 0.75), ("Method", 0.8), ("Next due", 0.85), ("Evidence", 0.6)]
ROW_HEIGHT = 11


def roster_pdf(report: Roster) -> bytes:
    """Drawn straight on the canvas, row by row: a roster of 2,000 technicians is thousands of rows, which
    reportlab's table layout takes minutes to set; one line per row, cut to its column, takes seconds."""
    tz = report.tz
    rows = [[r.person.display_name, f"{r.competency.code} {r.competency.title}", r.standing_label,
             localtime.us_date(r.last_assessed, tz), r.assessor, r.assessor_role, r.method.replace("_", " "),
             localtime.us_date(r.next_due, tz), r.evidence_id or ""] for r in report.rows] \
        or [["No technicians in this course."] + [""] * 8]
    width, height = landscape(LETTER)
    top, bottom = height - MARGIN, 0.8 * inch
    first_page_rows = int((top - 40 - bottom) // ROW_HEIGHT) - 1
    per_page = int((top - bottom) // ROW_HEIGHT) - 1
    pages = 1 + max(0, -(-(len(rows) - first_page_rows) // per_page))
    footer = _footer(report.course, report.day, tz)
    out = io.BytesIO()
    pdf = pdfcanvas.Canvas(out, pagesize=(width, height))
    pdf.setTitle(f"Competency roster: {report.chosen.label}")
    pdf.setAuthor("Pharmacy Tech Pathways")
    xs, x = [], MARGIN
    for _, w in ROSTER_COLUMNS:
        xs.append(x)
        x += w * inch
    limits = [max(4, int(w * inch / 4.1)) for _, w in ROSTER_COLUMNS]
    index = 0
    for page in range(1, pages + 1):
        y = top
        if page == 1:
            pdf.setFont("Helvetica-Bold", 15)
            pdf.drawString(MARGIN, y - 12, _cut(f"Competency roster: {report.chosen.label}", 95))
            pdf.setFont("Helvetica", 9)
            pdf.drawString(MARGIN, y - 28, _cut(
                f"{report.course.display_title}. As of {localtime.us_date(report.day)}. "
                + "; ".join(f"{STANDING_LABELS[k]}: {v}" for k, v in report.counts.items()) + ".", 170))
            y -= 40
        pdf.setFillColor(colors.HexColor("#e6e6e6"))
        pdf.rect(MARGIN, y - ROW_HEIGHT + 2, x - MARGIN, ROW_HEIGHT, stroke=0, fill=1)
        pdf.setFillColor(colors.black)
        pdf.setFont("Helvetica-Bold", 8)
        for (label, _), left in zip(ROSTER_COLUMNS, xs, strict=True):
            pdf.drawString(left + 2, y - 6, label)
        y -= ROW_HEIGHT
        pdf.setStrokeColor(colors.HexColor("#999999"))
        pdf.setLineWidth(0.3)
        text = pdf.beginText()  # one text object per page: far cheaper than a drawString per cell
        text.setFont("Helvetica", 8)
        lines = []
        for row in rows[index:index + (first_page_rows if page == 1 else per_page)]:
            for value, left, limit in zip(row, xs, limits, strict=True):
                text.setTextOrigin(left + 2, y - 6)
                text.textOut(_cut(value, limit))
            lines.append((MARGIN, y - ROW_HEIGHT + 2, x, y - ROW_HEIGHT + 2))
            y -= ROW_HEIGHT
            index += 1
        pdf.drawText(text)
        pdf.lines(lines)
        pdf.setFont("Helvetica", 7.5)
        pdf.drawString(MARGIN, 0.4 * inch, footer)
        pdf.drawRightString(width - MARGIN, 0.4 * inch, f"Page {page} of {pages}")
        pdf.showPage()
    pdf.save()
    return out.getvalue()


def summary_pdf(report: Summary) -> bytes:
    st = _styles()
    tz = localtime.zone(report.course.registration)
    story = [_p("Compliance summary", st["title"]),
             _p(f"{report.course.display_title}. As of {localtime.us_date(report.day)}. {report.technicians} "
                f"technicians. Percent current: technician x competency pairs held (current or due for "
                f"revalidation) over all pairs.", st["body"]), Spacer(1, 6)]
    groups = [report.overall, *report.departments, *report.areas]
    rows = [[g.label, g.total, g.current, g.due, g.expired, "—" if g.percent is None else f"{g.percent}%"]
            for g in groups]
    story.append(_table(["Group", "Pairs", "Current", "Due", "Expired", "Percent current"], rows,
                        [3.2 * inch, 0.7 * inch, 0.7 * inch, 0.6 * inch, 0.7 * inch, 1.0 * inch], st))
    story.append(_p("Trend over the last 12 months", st["h2"]))
    story.append(report_chart.drawing(chart_series(report)))
    trend_rows = [[g.label, *["—" if v is None else f"{v}%" for _, v in g.trend]] for g in groups]
    head = ["Group", *[f"{d:%b} {d:%y}" if i < len(report.points) - 1 else localtime.us_date(d)
                       for i, d in enumerate(report.points)]]
    story.append(Spacer(1, 6))
    story.append(_table(head, trend_rows, [1.7 * inch] + [0.6 * inch] * len(report.points), st))
    return _build(story, _footer(report.course, report.day, tz), landscape(LETTER))


def chart_series(report: Summary) -> list:
    """The overall line and each department's (the chart stays readable; areas are in the table)."""
    return [(g.label, g.trend) for g in [report.overall, *report.departments][:6]]


def person_pdf(report: PersonFile) -> bytes:
    st, tz, p = _styles(), report.tz, report.person
    story = [_p(f"Person file: {p.display_name}", st["title"]),
             _p(f"{report.course.display_title}. As of {localtime.us_date(report.day)}. "
                f"{p.email or ''}{' · not launched yet' if p.last_launch_at is None else ''}", st["body"]),
             _p("Competencies", st["h2"])]
    rows = [[f"{c.code} {c.title}", standing_label(e), localtime.us_date(e.achieved_at, tz),
             localtime.us_date(e.expires_at, tz)] for c, e in report.statuses]
    story.append(_table(["Competency", "Standing", "Last assessed", "Next due"], rows or [["—", "", "", ""]],
                        [3.6 * inch, 1.6 * inch, 1.0 * inch, 1.0 * inch], st))
    story.append(_p("Sign-offs", st["h2"]))
    rows = []
    for s in report.sign_offs:
        state = f"Revoked {localtime.us_date(s.revocation.revoked_at, tz)}: {s.revocation.reason}" \
            if s.revocation else ("Correction: " + (s.correction_reason or "") if s.corrects_id else "Signed off")
        rows.append([s.competency.code, localtime.us_date(s.signed_at, tz), s.signer_name,
                     audit_log.role_label(s.signer_role), s.rating_label, s.method.replace("_", " "),
                     localtime.us_date(s.expires_at, tz), state])
    story.append(_table(["Competency", "Assessed", "By", "Role", "Rating", "Method", "Expires", "State"],
                        rows or [["None"] + [""] * 7],
                        [0.9 * inch, 0.8 * inch, 1.1 * inch, 0.7 * inch, 0.9 * inch, 0.7 * inch, 0.8 * inch,
                         1.4 * inch], st))
    story.append(_p("Evidence", st["h2"]))
    rows = [[e.id, e.kind.replace("_", " "), e.title, e.status.replace("_", " "),
             localtime.us_date(e.created_at, tz)] for e in report.evidence]
    story.append(_table(["Id", "Kind", "Title", "State", "Recorded"], rows or [["None", "", "", "", ""]],
                        [0.5 * inch, 1.2 * inch, 3.4 * inch, 1.0 * inch, 1.0 * inch], st))
    story.append(_p("Audit trail", st["h2"]))
    rows = [[localtime.us_datetime(line.entry.at, tz), line.what, line.actor_name, line.actor_role,
             line.competency.code if line.competency else ""] for line in report.trail]
    story.append(_table(["When", "What", "By", "Role", "Competency"], rows or [["None", "", "", "", ""]],
                        [1.7 * inch, 2.3 * inch, 1.5 * inch, 0.9 * inch, 0.8 * inch], st))
    return _build(story, _footer(report.course, report.day, tz), LETTER)

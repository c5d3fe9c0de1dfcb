"""Reports against the competency world, as of a date in the past: the competency roster, the compliance summary
and the person file, each as data, CSV (round trip) and PDF (text read back through pypdf)."""
import csv
import io
from datetime import date, timedelta

import pytest
from pypdf import PdfReader

from lti_tool.services import DomainError, NotFound, report_chart, report_pdf, reports, reviews, status
from lti_tool.services.csv_cells import spreadsheet_text, to_csv
from tests.support.competency_world import T0, World, count_queries

DAY = timedelta(days=1)


@pytest.fixture
def world(make):
    w = World(make)
    w.tech.person.name, w.tech2.person.name = "Ana Alvarez", "Ben Brooks"
    w.tech.person.family_name, w.tech2.person.family_name = "Alvarez", "Brooks"
    # Ana: garbing signed off on Jan 15, 2025 (6-month revalidation: expired Jul 15, 2025).
    w.garb_signed = w.signed(w.garb)
    # Ben: cart fill signed off on Jan 15, 2025, revoked on Mar 1, 2025.
    w.cart_signed = w.signed(w.cart, actor=w.tech2, title="Cart")
    reviews.revoke(w.manager, w.cart_signed.id, "Wrong technician recorded", now=T0 + 45 * DAY)
    return w


def pdf_text(data: bytes) -> str:
    return " ".join(" ".join((page.extract_text() or "") for page in PdfReader(io.BytesIO(data)).pages).split())


def by_pair(report):
    return {(r.person.id, r.competency.code): r for r in report.rows}


def test_roster_as_of_the_past_shows_what_later_expired_or_was_revoked(world):
    rows = by_pair(reports.roster(world.manager, world.course.id, "dept:central", date(2025, 2, 1)))
    cart = rows[(world.tech2.person.id, "CEN-CART")]
    assert cart.standing == "current" and cart.assessor == world.manager.person.display_name
    assert cart.assessor_role == "Manager" and cart.method == "observed" and cart.evidence_id
    past = by_pair(reports.roster(world.manager, world.course.id, f"c:{world.garb.id}", date(2025, 2, 1)))
    garb = past[(world.tech.person.id, "IV-GARB")]
    assert garb.standing == "current" and garb.last_assessed == T0
    assert garb.next_due.date() == date(2025, 7, 15)
    assert past[(world.tech2.person.id, "IV-GARB")].standing == "not_qualified"
    # Within the 30-day warning window: due.
    due = by_pair(reports.roster(world.manager, world.course.id, f"c:{world.garb.id}", date(2025, 7, 1)))
    assert due[(world.tech.person.id, "IV-GARB")].standing == "due"

    today = reports.roster(world.manager, world.course.id, "dept:central")
    now_rows = by_pair(today)
    assert now_rows[(world.tech2.person.id, "CEN-CART")].standing == "not_qualified"
    assert now_rows[(world.tech2.person.id, "CEN-CART")].assessor == ""
    later = by_pair(reports.roster(world.manager, world.course.id, f"c:{world.garb.id}"))
    assert later[(world.tech.person.id, "IV-GARB")].standing == "expired"
    assert today.day == reports.as_of_moment(world.course, None)[0]


def test_roster_csv_round_trip_and_pdf(world):
    report = reports.roster(world.manager, world.course.id, "dept:central", date(2025, 2, 1))
    parsed = list(csv.reader(io.StringIO(to_csv(reports.ROSTER_HEADER, reports.roster_csv_rows(report)))))
    assert parsed[0] == reports.ROSTER_HEADER
    rows = {(r[0], r[2]): r for r in parsed[1:]}
    assert len(parsed) == 1 + 2 * 2  # two technicians x two central competencies
    ben = rows[("Ben Brooks", "CEN-CART")]
    assert ben[4] == "Current" and ben[6] == "Jan 15, 2025" and ben[9] == "observed"
    assert rows[("Ana Alvarez", "REG-AUDIT")][4] == "Not qualified"
    text = pdf_text(report_pdf.roster_pdf(report))
    assert "Competency roster" in text and "Ben Brooks" in text and "Jan 15, 2025" in text
    assert "as of Feb 1, 2025" in text and "Page 1 of 1" in text


def test_roster_queries_do_not_grow_with_technicians(world, make):
    reports.roster(world.manager, world.course.id, "dept:central")
    with count_queries() as few:
        reports.roster(world.manager, world.course.id, "dept:central")
    for _ in range(6):
        make.member(world.course)
    with count_queries() as many:
        report = reports.roster(world.manager, world.course.id, "dept:central")
    assert many[0] == few[0]
    rows, number, pages = report.page(3, per_page=3)  # 8 technicians x 2 central competencies
    assert (number, pages, report.technicians) == (3, 3, 8) and len(rows) == 2 * 2
    assert report.page(99, per_page=3)[1] == 3 and len(report.page(1, per_page=3)[0]) == 3 * 2


def test_summary_and_trend(world):
    report = reports.summary(world.manager, world.course.id, date(2025, 2, 1))
    central = next(g for g in report.departments if g.key == "dept:central")
    assert (central.total, central.current) == (4, 1) and central.percent == 25.0
    assert report.overall.total == 6 and report.overall.current == 2
    assert len(report.points) == 13 and report.points[-1] == date(2025, 2, 1)
    assert report.points[0] == date(2024, 2, 29) and report.points[-2] == date(2025, 1, 31)
    # On Dec 31, 2024 nothing was signed off yet.
    assert dict(report.overall.trend)[date(2024, 12, 31)] == 0.0
    assert dict(report.overall.trend)[date(2025, 2, 1)] == round(100 * 2 / 6, 1)
    # The trend agrees with status.compute (the rule every page uses) at every point.
    people = [world.tech.person.id, world.tech2.person.id]
    comps = [world.garb.id, world.cart.id, world.audit_comp.id]
    for point, percent in report.overall.trend:
        at = reports.as_of_moment(world.course, point)[1]
        held = sum(e.held for per in status.compute(world.reg, people, comps, at).values() for e in per.values())
        assert percent == round(100 * held / 6, 1), point
    later = reports.summary(world.manager, world.course.id, date(2025, 8, 1))
    assert dict(later.overall.trend)[date(2025, 3, 31)] == round(100 / 6, 1)  # the cart fill was revoked Mar 1
    assert later.overall.expired == 1  # garbing lapsed Jul 15
    svg = report_chart.svg(report_pdf.chart_series(report), "Trend")
    assert svg.startswith("<svg") and "<polyline" in svg and "Feb 1, 2025: 33.3%" in svg
    parsed = list(csv.reader(io.StringIO(to_csv(reports.SUMMARY_HEADER, reports.summary_csv_rows(report)))))
    assert ["All competencies", "Overall", "6", "2", "0", "0", "33.3"] in parsed
    text = pdf_text(report_pdf.summary_pdf(report))
    assert "Compliance summary" in text and "33.3%" in text and "Hospital central pharmacy" in text


def test_person_file_with_audit_trail(world):
    report = reports.person_file(world.manager, world.course.id, world.tech2.person.id, date(2025, 2, 1))
    standing = {c.code: reports.standing_label(e) for c, e in report.statuses}
    assert standing["CEN-CART"] == "Current"
    assert [s.revocation is not None for s in report.sign_offs] == [True]
    actions = [line.entry.action for line in report.trail]
    assert "sign_off.create" in actions and "sign_off.revoke" in actions
    parsed = list(csv.reader(io.StringIO(to_csv(reports.PERSON_HEADER, reports.person_csv_rows(report)))))
    assert any(r[0] == "Sign-off" and r[3] == "Revoked" and "Wrong technician recorded" in r[7] for r in parsed)
    text = pdf_text(report_pdf.person_pdf(report))
    assert "Ben Brooks" in text and "Revoked" in text and "Wrong technician recorded" in text
    assert "Revoked a sign-off" in text


def test_report_scope(world, make):
    with pytest.raises(NotFound):
        reports.roster(world.tech, world.course.id)
    other = World(make)
    with pytest.raises(NotFound):
        reports.roster(world.manager, other.course.id)
    with pytest.raises(NotFound):
        reports.person_file(world.manager, world.course.id, other.tech.person.id)
    with pytest.raises(DomainError):
        reports.find_set(world.course, "c:999999")
    with pytest.raises(DomainError):
        reports.parse_as_of("30/11/2026")


def test_csv_cells_cannot_become_formulas():
    assert spreadsheet_text("=HYPERLINK(\"http://x\")") == "'=HYPERLINK(\"http://x\")"
    assert spreadsheet_text("@SUM(A1)") == "'@SUM(A1)" and spreadsheet_text("+1+2") == "'+1+2"
    assert spreadsheet_text("-12.5") == "-12.5" and spreadsheet_text("Ana") == "Ana"

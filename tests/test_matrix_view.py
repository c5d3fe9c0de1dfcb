"""The team matrix for a real team (issue 16), over real HTTP after a real launch: the name search (in SQL, any
case, with keyset pages), the competency filter, column heads with names and the legend of names, cells that
open the record at the competency, "Export this view" (every page of the filter, the same cells, formula-safe,
read back), a page of 50 technicians x the shipped framework under 200 KB, and query counts flat in team size."""
import csv
import io
import re
from html import unescape

import pytest
from sqlalchemy import select

from lti_tool.extensions import db
from lti_tool.models import Competency, Course, CourseFramework, Person
from lti_tool.services import frameworks, matrix
from lti_tool.tool_session import PARAM
from tests.test_manager_pages import Team, _statements

LIMIT = 200 * 1024


@pytest.fixture
def team(app, live_server, platform, registered, http):
    return Team(app, platform, http, live_server)


def get(team, **params):
    return team.http.get(f"{team.base}/team/", params={PARAM: team.token, **params})


def names(html: str) -> list[str]:
    return [unescape(n) for n in re.findall(r'<th scope="row" class="name-col">\s*<a href="[^"]*">([^<]*)</a>', html)]


def heads(html: str) -> list[str]:
    return re.findall(r'<th data-c="\d+" title="([^"]*)"', html)


def test_name_search_is_case_insensitive_in_sql_and_pages_by_keyset(team):
    team.technicians(55, prefix="Tech")
    team.technicians(3, prefix="Rivera")
    with team.app.app_context():
        person = db.session.scalar(select(Person).where(Person.sub == "Tech-7"))
        person.email, person.name = "dana.o'neil@example.org", "Dana O'Neil"
        person.given_name, person.family_name = "Dana", "O'Neil"
        db.session.commit()
    rivera = get(team, q="  rIVERA ").text
    assert names(rivera) == ["Rivera 000", "Rivera 001", "Rivera 002"] and "Technicians 1–3 of 3" in rivera
    assert 'value="rIVERA"' in rivera  # the search stays in its box
    assert names(get(team, q="O'NEIL@EXAMPLE").text) == ["Dana O'Neil"]  # e-mail too
    assert names(get(team, q="%").text) == []  # a typed % is a percent sign, not a wildcard
    tech = get(team, q="tech")
    assert "Technicians 1–50 of 54" in tech.text  # Tech-7 is Dana now
    following = re.search(r'href="([^"]*after=\d+[^"]*)" rel="next"', tech.text).group(1)
    assert "q=tech" in following
    second = team.http.get(team.base + unescape(following)).text
    assert "Technicians 51–54 of 54" in second and len(names(second)) == 4
    assert not set(names(second)) & set(names(tech.text)) and "Rivera 000" not in second
    too_long = get(team, q="x" * 101)
    assert too_long.status_code == 400 and "Type at most 100 characters of a name." in too_long.text


def test_competency_filter_heads_legend_and_links_to_the_record(team):
    (tech,) = team.technicians(1)
    team.sign(team.request(tech, [team.garb])[0])
    page = get(team, competency=[team.garb, team.cart])
    html = page.text
    assert heads(html) == ["IV-GARB Garbing", "CEN-CART Cart fill"]
    assert f'value="{team.garb}" checked>' in html and f'value="{team.asep}">' in html
    assert "(2 chosen)" in html
    legend = re.search(r'<section class="legend legend-names".*?</section>', html, re.S).group(0)
    assert '<dt>IV-GARB</dt><dd>Garbing</dd>' in legend and "IV-ASEP" not in legend
    # With an area as well, the columns are both: the chosen ones inside the area.
    assert heads(get(team, competency=[team.garb, team.cart], area=team.iv_area).text) == ["IV-GARB Garbing"]
    wrong = get(team, competency=["99999999"])
    assert wrong.status_code == 400 and "Not a competency of this course." in wrong.text
    # The record a cell opens (manager.js adds ?competency=<id>#competency-<id> to the row's link): that
    # competency's area is open and its row marked.
    record = team.get(f"/team/technicians/{tech}", competency=team.cart).text
    assert f'<tr id="competency-{team.cart}" class="focused">' in record
    opened = re.findall(r"<details( open)? class=\"area\">\s*<summary><span class=\"code\">(\w+)", record)
    assert opened == [("", "IV"), (" open", "CEN")]
    assert f'<tr id="competency-{team.garb}">' in team.get(f"/team/technicians/{tech}").text
    unknown = team.get(f"/team/technicians/{tech}", competency=99999).text  # the first area, as without it
    assert re.findall(r"<details( open)? class=\"area\">", unknown) == [" open", ""]


def test_export_this_view_is_every_page_of_the_filter_and_reads_back(team):
    ids = team.technicians(53)
    with team.app.app_context():
        hostile = db.session.get(Person, ids[0])
        hostile.name, hostile.given_name, hostile.family_name = '=HYPERLINK("https://evil.example","x")', None, None
        db.session.commit()
    team.sign(team.request(ids[1], [team.garb])[0])
    team.request(ids[2], [team.cart])
    params = {"area": team.iv_area, "q": "tech"}
    page = get(team, **params).text
    link = re.search(r'href="([^"]*/team/matrix\.csv[^"]*)" download', page).group(1)
    assert "area=" in link and "q=tech" in link
    export = team.http.get(team.base + unescape(link))
    assert export.status_code == 200 and export.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in export.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(export.content.decode("utf-8"))))
    assert rows[0] == ["Technician", "Notes", "Held", "IV-GARB Garbing", "IV-ASEP Aseptic technique"]
    assert len(rows) == 1 + 52  # every page (50 on the first), not just the page shown; the renamed one is out
    # The first page of the CSV is the first page on screen, cell for cell (in words instead of codes).
    words = {abbr: matrix.status.LABELS[code] for code, abbr in matrix.ABBREVIATIONS.items()}
    shown = re.findall(r"<tr>\s*<th scope=\"row\".*?</tr>", page, re.S)
    for html_row, csv_row in zip(shown, rows[1:51], strict=True):
        cells = re.findall(r"<td class=[a-z]+>([A-Z]+)", html_row)
        assert csv_row[0] in unescape(html_row) and [words[c] for c in cells] == csv_row[3:]
        assert csv_row[1] == "Not launched yet" and csv_row[2] == re.search(r">(\d+/\d+)<", html_row).group(1)
    signed = next(r for r in rows if r[2] == "1/2")
    assert signed[3:] == ["Achieved", "Not started"]
    # A name a spreadsheet would run is written as text; without the search it is in the export.
    everyone = team.http.get(f"{team.base}/team/matrix.csv", params={PARAM: team.token})
    names_out = [r[0] for r in csv.reader(io.StringIO(everyone.content.decode("utf-8")))]
    assert "'=HYPERLINK(\"https://evil.example\",\"x\")" in names_out and len(names_out) == 54
    assert team.http.get(f"{team.base}/team/matrix.csv", params={PARAM: team.token, "status": "x"}).status_code \
        == 400


def test_fifty_technicians_by_the_shipped_framework_stay_under_200_kb(team):
    with team.app.app_context():
        shipped = frameworks.ensure_default_framework()
        db.session.add(CourseFramework(course_id=team.course_id, framework_id=shipped.id))
        db.session.commit()
        columns = len(matrix.course_tree(db.session.get(Course, team.course_id)).leaves)
    team.technicians(60)
    page = get(team)
    assert page.status_code == 200 and len(names(page.text)) == 50
    assert columns > 100 and len(heads(page.text)) == columns
    print(f"matrix page: 50 technicians x {columns} competencies = {len(page.content)} bytes")
    assert len(page.content) < LIMIT, len(page.content)


def test_search_and_competency_filter_keep_the_query_count_flat(team):
    params = {"q": "tech", "competency": team.garb}
    few = team.technicians(3)
    for t in few:
        team.sign(team.request(t, [team.garb])[0])
    small = _statements(team, "/team/", **params), _statements(team, "/team/matrix.csv", **params)
    many = team.technicians(40, prefix="More")
    for t in many:
        team.request(t, [team.cart, team.garb])
    team.technicians(30, prefix="Tech-b")
    large = _statements(team, "/team/", **params), _statements(team, "/team/matrix.csv", **params)
    assert large == small, (small, large)


def test_competencies_the_course_does_not_use_are_refused(team):
    with team.app.app_context():
        other = Competency(framework_id=frameworks.ensure_default_framework().id, code="ZZ-OTHER", title="Other")
        db.session.add(other)
        db.session.commit()
        other_id = other.id
    assert get(team, competency=other_id).status_code == 400

"""No page a technician, preceptor or manager sees has English left in Spanish.

Every page is fetched over HTTP after real launches, with the same data, once with the person's language set to
English and once to Spanish (the switch in the header stores it on the person); tests/support/i18n_pages.py
compares the two. A string added to a template or a view without `_()` shows the same in both and fails here.
"""
from datetime import UTC, datetime, timedelta

import pytest
from babel.messages.pofile import read_po
from sqlalchemy import select

from lti_tool.extensions import db
from lti_tool.models import (
    Competency,
    Course,
    Evidence,
    Framework,
    IssuedCredential,
    Person,
    Registration,
    ReviewRequest,
    SignOff,
)
from lti_tool.services import ce, pathways, preceptors, reviews, settings
from tests.support.i18n_pages import Phrases, data_strings, untranslated, visible_texts
from tests.support.platform import CANVAS_ROLES
from tests.test_i18n import PO
from tests.test_technician_pages import actor_for, comp, good_form, launch

NOW = datetime.now(UTC)


@pytest.fixture
def people(app, live_server, platform, registered, http):
    """A technician with evidence in every state, a second technician named preceptor, and a manager."""
    import requests

    from lti_tool.models import CourseFramework
    from lti_tool.services import frameworks

    tech = launch(app, live_server, platform, http, "tech-1")
    tech2 = launch(app, live_server, platform, requests.Session(), "tech-2")
    manager = launch(app, live_server, platform, requests.Session(), "manager-1", CANVAS_ROLES["teacher"])
    with app.app_context():
        framework = frameworks.ensure_default_framework()
        course = db.session.scalars(select(Course)).one()
        db.session.add(CourseFramework(course_id=course.id, framework_id=framework.id))
        db.session.commit()
    ids = {}
    for kind in ("cross_training", "responsibility", "qi_project", "certification", "continuing_education"):
        form = good_form(app, kind)
        form["action"] = "draft" if kind == "responsibility" else "submit"
        saved = tech.post(f"/me/evidence/new/{kind}", form)
        assert saved.status_code == 303, saved.text[:3000]
        with app.app_context():
            ids[kind] = db.session.scalars(select(Evidence.id).where(Evidence.kind == kind)).one()
    with app.app_context():
        boss, me = actor_for("manager-1"), actor_for("tech-1")
        preceptors.name_preceptor(boss, boss.course.id, actor_for("tech-2").person.id,
                                  [comp(app, "USP797-02")])
        requests_by_kind = {kind: db.session.scalars(select(ReviewRequest.id).where(
            ReviewRequest.evidence_id == evidence_id)).all() for kind, evidence_id in ids.items()}
        reviews.return_for_revision(boss, requests_by_kind["qi_project"][0], "Add the second PDSA cycle's data.")
        for request_id in requests_by_kind["certification"]:
            reviews.sign_off(boss, request_id, "competent", "verified_document", [], "Card seen.")
        signed = db.session.scalars(select(SignOff.id).where(SignOff.evidence_id == ids["certification"])).first()
        reviews.revoke(boss, signed, "Wrong card number recorded.")
        assert me.person.id
        db.session.commit()
    return {"tech": tech, "tech2": tech2, "manager": manager, "evidence": ids}


def spanish_phrases() -> Phrases:
    with PO.open("rb") as fh:
        return Phrases(read_po(fh, locale="es"))


def set_language(app, sub, language):
    with app.app_context():
        db.session.scalars(select(Person).where(Person.sub == sub)).one().language = language
        db.session.commit()


def every_data_string(app) -> list[str]:
    """What the pages show as it was entered or loaded: names, course, competencies, evidence, comments."""
    with app.app_context():
        values = [app.config["TOOL_TITLE"]]
        for person in db.session.scalars(select(Person)):
            values += [person.name, person.given_name, person.family_name, person.email, person.display_name]
        for course in db.session.scalars(select(Course)):
            values += [course.title, course.label, course.context_id]
        values += list(db.session.scalars(select(Registration.name)))
        # The organization's own job roles (a tenant setting; the shipped list is its default).
        values += [settings.get(r, "job_roles") for r in db.session.scalars(select(Registration))]
        for framework in db.session.scalars(select(Framework)):
            values += [framework.name, framework.code, [level["label"] for level in framework.scale or []]]
        for c in db.session.scalars(select(Competency)):
            values += [c.code, c.title, c.description, c.checklist, c.departments]
        for e in db.session.scalars(select(Evidence)):
            values += [e.title, e.data]
        for r in db.session.scalars(select(ReviewRequest)):
            values += [r.return_comment]
        for s in db.session.scalars(select(SignOff)):
            values += [s.signer_name, s.rating_label, s.comment, s.correction_reason,
                       s.revocation.reason if s.revocation else None]
        # Shipped content, like the framework's competencies: career pathway definitions and CE rules.
        values += [pathways.default_definitions(), ce.rules()]
        return data_strings(values)


def pages(app, people) -> list[tuple[str, str, str, dict]]:
    """(who, path, method, form) for every page technicians, preceptors and managers see."""
    ids = people["evidence"]
    with app.app_context():
        tech_id = actor_for("tech-1").person.id
        open_request = db.session.scalars(select(ReviewRequest.id).where(
            ReviewRequest.evidence_id == ids["cross_training"], ReviewRequest.status == "open")).first()
        ce_request = db.session.scalars(select(ReviewRequest.id).where(
            ReviewRequest.evidence_id == ids["continuing_education"])).first()
        sign_off = db.session.scalars(select(SignOff.id).where(SignOff.evidence_id == ids["certification"])).first()
    found = [("tech", path, "GET", {}) for path in (
        "/app/", "/me/", "/me/evidence", "/me/evidence/new", *[f"/me/evidence/new/{k}" for k in ids],
        *[f"/me/evidence/{i}" for i in ids.values()], f"/me/evidence/{ids['responsibility']}/edit",
        f"/me/evidence/{ids['qi_project']}/edit", "/transcripts/", f"/transcripts/people/{tech_id}",
        "/notifications/preferences", "/me/evidence/999999", "/team/queue")]
    found += [
        # A form sent back with errors: the error summary, the messages next to fields.
        ("tech", "/me/evidence/new/cross_training", "POST", {"title": "", "hours": "abc", "start_date": "x"}),
        ("tech", "/me/evidence/new/continuing_education", "POST", {"title": "CE", "uan": "0197-0000-99-001-B05-X",
                                                                   "hours": "0", "completion_date": ""}),
        ("tech2", "/app/", "GET", {}), ("tech2", "/team/queue", "GET", {}),
        ("tech2", f"/team/review/{open_request}", "GET", {}),
        ("tech2", f"/team/review/{open_request}", "POST", {"decision": "sign_off"}),
        ("manager", "/app/", "GET", {}), ("manager", "/team/queue", "GET", {}), ("manager", "/team/", "GET", {}),
        ("manager", f"/team/review/{ce_request}", "GET", {}),
        ("manager", f"/team/review/{ce_request}", "POST", {"decision": "return", "comment": ""}),
        ("manager", f"/team/technicians/{tech_id}", "GET", {}), ("manager", f"/team/sign-offs/{sign_off}", "GET", {}),
        ("manager", "/team/preceptors", "GET", {}), ("manager", "/transcripts/", "GET", {}),
        ("manager", "/notifications/preferences", "GET", {}),
        ("manager", f"/transcripts/people/{tech_id}", "GET", {}),
        ("manager", "/team/bulk", "GET", {"request": [str(ce_request)]}),
        ("manager", "/me/evidence", "GET", {}),  # a readable 403 in the right language
    ]
    return found


def fetch(people, who, path, method, form):
    browser = people[who]
    if method == "POST":
        return browser.post(path, form)
    response = browser.http.get(browser.url(path), params={"lt": browser.token, **form}, allow_redirects=False)
    return response


def test_no_page_has_english_left_in_spanish(app, people):
    phrases = spanish_phrases()
    data = every_data_string(app)
    subs = {"tech": "tech-1", "tech2": "tech-2", "manager": "manager-1"}
    problems, checked = {}, 0
    for who, path, method, form in pages(app, people):
        rendered = {}
        for language in ("en", "es"):
            set_language(app, subs[who], language)
            response = fetch(people, who, path, method, form)
            assert response.status_code in (200, 400, 403, 404), (who, path, response.status_code)
            assert f'<html lang="{language}">' in response.text, (who, path)
            rendered[language] = response.text
        assert rendered["en"] != rendered["es"], (who, path)
        found = untranslated(rendered["es"], rendered["en"], data, phrases)
        if found:
            problems[f"{who} {method} {path}"] = found
        checked += len(visible_texts(rendered["es"]))
    assert checked > 1000
    assert not problems, "\n".join(f"{page}:\n    " + "\n    ".join(texts) for page, texts in problems.items())


def test_public_verification_pages_follow_the_browser(app, people):
    tech = people["tech"]
    with app.app_context():
        tech_id = actor_for("tech-1").person.id
    assert tech.http.get(tech.url(f"/transcripts/people/{tech_id}/download/pdf-letter"),
                         params={"lt": tech.token}).status_code == 200
    with app.app_context():
        public_id = db.session.scalars(select(IssuedCredential.public_id)).first()
    phrases = spanish_phrases()
    data = every_data_string(app)
    for path in ("/verify", f"/verify/{public_id}"):
        en = tech.http.get(tech.url(path), headers={"Accept-Language": "en-US"})
        es = tech.http.get(tech.url(path), headers={"Accept-Language": "es-MX,es;q=0.9"})
        assert en.status_code == es.status_code == 200 and '<html lang="es">' in es.text
        assert not untranslated(es.text, en.text, data, phrases), path


def test_the_check_finds_an_unwrapped_string():
    """The detector itself: a text left out of _() is caught, data and shared words are not."""
    english = "<html><p>Signed by</p><p>Tess Nguyen</p><button title='Open it'>Save</button><p>CE · PDF</p></html>"
    spanish = ("<html><p>Aprobada por</p><p>Tess Nguyen</p><button title='Open it'>Guardar</button>"
               "<p>CE · PDF</p><p>Firmado: Awaiting review</p></html>")
    phrases = Phrases([type("M", (), {"id": "Awaiting review", "string": "En espera de revisión"})()])
    found = untranslated(spanish, english, ["Tess Nguyen"], phrases)
    assert found == ["Open it", "Firmado: Awaiting review  [English: Awaiting review]"]


def test_expected_dates_are_spanish(app, people):
    tech = people["tech"]
    set_language(app, "tech-1", "es")
    page = tech.http.get(tech.url(f"/me/evidence/{people['evidence']['qi_project']}"), params={"lt": tech.token})
    today = NOW.date()
    months = ("ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sept", "oct", "nov", "dic")
    assert any(f"{d.day} {months[d.month - 1]} {d.year}" in page.text
               for d in (today, today - timedelta(days=1), today + timedelta(days=1)))

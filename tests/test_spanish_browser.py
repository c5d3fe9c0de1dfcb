"""The Spanish journey end to end in Debian's chromium: a technician and a manager launch from the test platform
with the LMS locale "es-MX"; the technician's portfolio and forms are in Spanish, she records cross-training and
asks for review; the manager reviews and signs it off in Spanish; the transcript PDF has Spanish labels; the switch
in the header turns the tool to English and back. axe-core finds no violation on the Spanish pages."""
import io
from datetime import date, timedelta

import pytest
from playwright.sync_api import expect
from pypdf import PdfReader
from sqlalchemy import select

from lti_tool.extensions import db
from lti_tool.models import Competency, Course, CourseFramework, Person, SignOff
from lti_tool.services import frameworks
from tests.support.browser import chromium, screenshot, screenshot_on_failure
from tests.support.platform import CANVAS_ROLES, CLAIM

pytestmark = pytest.mark.browser
GARB = "USP797-02"
SPANISH = {CLAIM + "launch_presentation": {"document_target": "iframe", "locale": "es-MX"}}


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@pytest.fixture
def people(app, live_server, platform, registered, http):
    import requests

    tech, _, _ = platform.launch(http, live_server, sub="tess", name="Tess Nguyen", **SPANISH)
    with requests.Session() as other:
        boss, _, _ = platform.launch(other, live_server, sub="morgan", name="Morgan Ellis",
                                     roles=CANVAS_ROLES["teacher"], **SPANISH)
    with app.app_context():
        framework = frameworks.ensure_default_framework()
        course = db.session.scalars(select(Course)).one()
        db.session.add(CourseFramework(course_id=course.id, framework_id=framework.id))
        db.session.commit()
        garb = db.session.scalars(select(Competency).where(Competency.framework_id == framework.id,
                                                           Competency.code == GARB)).one()
        steps, garb_id = list(garb.checklist), garb.id
    return {"tech": live_server + tech.headers["Location"], "boss": live_server + boss.headers["Location"],
            "garb": garb_id, "steps": steps}


def axe_clean(page, name):
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    assert results.violations_count == 0, f"{name}: {results.generate_report()}"


def nav(page, name):
    page.get_by_role("navigation", name="Principal").get_by_role("link", name=name).click()
    page.wait_for_load_state("load")


def test_the_spanish_journey(app, browser, live_server, people):
    context = browser.new_context(viewport={"width": 1200, "height": 900}, locale="en-US")
    page = context.new_page()
    with screenshot_on_failure(page, "spanish-journey"):
        # The launch lands on the portfolio, in the LMS's language (the browser says en-US: the claim wins).
        page.goto(people["tech"])
        page.wait_for_load_state("load")
        expect(page.locator("html")).to_have_attribute("lang", "es")
        expect(page.get_by_role("navigation", name="Principal")).to_contain_text("Mi portafolio")
        expect(page.get_by_role("link", name="Saltar al contenido")).to_have_count(1)
        axe_clean(page, "portfolio (es)")
        screenshot(page, "spanish-1-portfolio")

        # Record cross-training from the form, in Spanish.
        page.goto(page.url.split("/me/")[0] + f"/me/evidence/new/cross_training?competency={people['garb']}&"
                  + page.url.split("?", 1)[1])
        expect(page.get_by_role("heading", level=1)).to_have_text("Registrar capacitación cruzada")
        expect(page.locator("label[for=f-trainer-name]")).to_have_text("Nombre del capacitador")
        page.fill("#f-title", "Vestimenta observada en la sala de IV")
        page.select_option("#f-department", "iv_room")
        expect(page.locator("#f-department option[value=iv_room]")).to_have_text("Sala de IV / preparación estéril")
        page.fill("#f-skills", "Orden de vestimenta\nMuestra de guantes")
        page.fill("#f-trainer-name", "Dana Ruiz")
        page.fill("#f-hours", "3.5")
        day = (date.today() - timedelta(days=2)).isoformat()
        page.fill("#f-start-date", day)
        page.fill("#f-end-date", day)
        for step in people["steps"]:
            page.locator(f"input[name=checklist_steps][value=\"{step}\"]").check()
        axe_clean(page, "cross-training form (es)")
        screenshot(page, "spanish-2-form")
        page.get_by_role("button", name="Guardar y pedir revisión").click()
        page.wait_for_load_state("load")
        expect(page.get_by_role("status").first).to_contain_text("se guardó y se envió a revisión")
        expect(page.locator("main")).to_contain_text("En espera de revisión")
        axe_clean(page, "evidence detail (es)")
        screenshot(page, "spanish-3-requested")

        # The manager reviews and signs off, in Spanish.
        boss = context.new_page()
        boss.goto(people["boss"])
        boss.wait_for_load_state("load")
        expect(boss.locator("html")).to_have_attribute("lang", "es")
        expect(boss.get_by_role("heading", level=1)).to_contain_text("Cola de revisión")
        axe_clean(boss, "review queue (es)")
        screenshot(boss, "spanish-4-queue")
        boss.locator("main table a", has_text="Revisar").first.click()
        boss.wait_for_load_state("load")
        expect(boss.get_by_role("heading", name="Su decisión")).to_be_visible()
        # Without a rating: the error summary, in Spanish.
        boss.get_by_role("button", name="Aprobar", exact=True).click()
        boss.wait_for_load_state("load")
        expect(boss.locator("#error-summary")).to_contain_text("Elija una calificación.")
        axe_clean(boss, "review with errors (es)")
        for box in boss.locator("input[name=checklist_seen]").all():
            box.check()
        boss.locator("input[name=rating][value=competent]").check()
        boss.locator("input[name=method][value=observed]").check()
        boss.fill("#comment", "Técnica limpia de principio a fin.")
        axe_clean(boss, "review (es)")
        screenshot(boss, "spanish-5-review")
        boss.get_by_role("button", name="Aprobar", exact=True).click()
        boss.wait_for_load_state("load")
        expect(boss.get_by_role("status").first).to_contain_text(f"{GARB} aprobada para Tess Nguyen")
        with app.app_context():
            sign_off = db.session.scalars(select(SignOff)).one()
            assert sign_off.signer_name == "Morgan Ellis" and sign_off.rating_code == "competent"
            tech_id = db.session.scalars(select(Person.id).where(Person.sub == "tess")).one()

        # The technician sees it signed off; the transcript PDF is in Spanish.
        page.reload()
        expect(page.locator("main")).to_contain_text("Aprobada por")
        expect(page.locator("main")).to_contain_text("Morgan Ellis")
        nav(page, "Expedientes")
        expect(page.get_by_role("heading", level=1)).to_contain_text("Expedientes")
        axe_clean(page, "transcripts (es)")
        token = page.url.split("lt=", 1)[1].split("&", 1)[0]
        pdf = page.request.get(f"{live_server}/transcripts/people/{tech_id}/download/pdf-letter?lt={token}")
        assert pdf.ok and pdf.headers["content-type"] == "application/pdf"
        text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.body())).pages)
        for label in ("Expediente de competencias", "Competencias y aprobaciones", "Aprobada por", "Método",
                      "Página 1 de", "Verifique este expediente", "Capacitación cruzada por departamento",
                      "Educación continua"):
            assert label in text, label
        assert "Competencies and sign-offs" not in text and "Signed by" not in text

        # The switch: English, kept for the next pages; then back to Spanish.
        page.get_by_role("button", name="English").click()
        page.wait_for_load_state("load")
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(page.get_by_role("status").first).to_contain_text("The tool now shows in English.")
        expect(page.get_by_role("heading", level=1)).to_contain_text("Transcripts")
        page.get_by_role("navigation", name="Main").get_by_role("link", name="My evidence").click()
        page.wait_for_load_state("load")
        expect(page.get_by_role("heading", level=1)).to_have_text("My evidence")
        screenshot(page, "spanish-6-switched-to-english")
        page.get_by_role("button", name="Español").click()
        page.wait_for_load_state("load")
        expect(page.locator("html")).to_have_attribute("lang", "es")
        expect(page.get_by_role("heading", level=1)).to_have_text("Mi evidencia")
        axe_clean(page, "evidence list (es)")
    context.close()

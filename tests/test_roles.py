"""Role mapping against the role sets Canvas and Moodle really send: course (membership) roles first, institution
and system roles never turn a learner into a manager or the other way round; adjustable per registration."""
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from lti_tool.extensions import db
from lti_tool.lti.roles import map_roles
from lti_tool.models import Membership, Person, Registration
from tests.support.platform import CANVAS_ROLES, LIS, MOODLE_ROLES


@pytest.mark.parametrize("who, expected", [
    ("teacher", ("manager", False)),
    ("ta", ("manager", False)),
    ("designer", ("designer", False)),
    ("observer", ("observer", False)),
    ("student", ("technician", False)),
    # Teaches elsewhere in the institution; a learner here.
    ("student_instructor_elsewhere", ("technician", False)),
    ("account_admin", ("admin", True)),
])
def test_canvas_roles(who, expected):
    assert map_roles(CANVAS_ROLES[who]) == expected


@pytest.mark.parametrize("who, expected", [
    ("editingteacher", ("manager", False)),
    # Moodle sends non-editing teachers as learners: they arrive as technicians unless the mapping says otherwise.
    ("teacher", ("technician", False)),
    ("student", ("technician", False)),
    # Site admins are Instructor in the course and institution/system Administrator: manager here, tool admin.
    ("siteadmin", ("manager", True)),
])
def test_moodle_roles(who, expected):
    assert map_roles(MOODLE_ROLES[who]) == expected


def test_institution_and_system_roles_alone_give_no_course_role():
    assert map_roles([LIS + "system/person#User"]) == (None, False)
    assert map_roles([LIS + "institution/person#Instructor", LIS + "institution/person#Faculty"]) == (None, False)
    assert map_roles([]) == (None, False)


def test_institution_instructor_never_promotes_a_learner_and_student_never_demotes_a_teacher():
    learner = [LIS + "membership#Learner", LIS + "institution/person#Instructor",
               LIS + "institution/person#Administrator"]
    assert map_roles(learner) == ("technician", True)
    teacher = [LIS + "membership#Instructor", LIS + "institution/person#Student", LIS + "system/person#User"]
    assert map_roles(teacher) == ("manager", False)


def test_short_role_names_and_lower_case_sub_roles():
    assert map_roles(["Learner"]) == ("technician", False)
    assert map_roles(["Instructor"]) == ("manager", False)
    assert map_roles([LIS + "membership/instructor#TeachingAssistant"]) == ("manager", False)


def test_the_strongest_course_role_wins():
    assert map_roles([LIS + "membership#Mentor", LIS + "membership#Learner"]) == ("technician", False)
    assert map_roles([LIS + "membership#Learner", LIS + "membership#Instructor"]) == ("manager", False)


def test_overrides_by_short_name_and_full_uri():
    assert map_roles(CANVAS_ROLES["observer"], {"Mentor": "manager"}) == ("manager", False)
    assert map_roles(CANVAS_ROLES["observer"], {LIS + "membership#Mentor": "technician"}) == ("technician", False)
    # Moodle's non-editing teachers come as learners: a registration may decide learners are observers there.
    assert map_roles(MOODLE_ROLES["teacher"], {"Learner": "observer"}) == ("observer", False)


def test_an_override_for_canvas_tas_is_not_hidden_by_the_instructor_role_sent_with_it():
    for key in ("Instructor#TeachingAssistant", "TeachingAssistant",
                LIS + "membership/Instructor#TeachingAssistant"):
        assert map_roles(CANVAS_ROLES["ta"], {key: "technician"}) == ("technician", False), key
    # Teachers are untouched by the TA override.
    assert map_roles(CANVAS_ROLES["teacher"], {"TeachingAssistant": "technician"}) == ("manager", False)


def test_roles_that_are_not_strings_are_ignored():
    assert map_roles([None, 3, LIS + "membership#Learner"]) == ("technician", False)


# -- through real launches --------------------------------------------------------------------------------

def _membership(app, sub):
    with app.app_context():
        person = db.session.scalars(select(Person).where(Person.sub == sub)).one()
        membership = db.session.scalars(select(Membership).where(Membership.person_id == person.id)).first()
        return (membership.role if membership else None), person.is_admin, (membership.lti_roles if membership
                                                                           else None)


QUEUE, PORTFOLIO, HOME = "/team/queue", "/me/", "/app/"


@pytest.mark.parametrize("roles, landing, role, is_admin", [
    (CANVAS_ROLES["teacher"], QUEUE, "manager", False),
    (CANVAS_ROLES["ta"], QUEUE, "manager", False),
    (CANVAS_ROLES["observer"], HOME, "observer", False),
    (CANVAS_ROLES["student_instructor_elsewhere"], PORTFOLIO, "technician", False),
    (CANVAS_ROLES["account_admin"], QUEUE, "admin", True),
    (MOODLE_ROLES["teacher"], PORTFOLIO, "technician", False),
    (MOODLE_ROLES["siteadmin"], QUEUE, "manager", True),
])
def test_launch_lands_the_mapped_role(live_server, platform, registered, http, app, roles, landing, role, is_admin):
    """The launch lands where the mapped role works: technicians on their portfolio, the manager side on the
    review queue, anyone else on Home, which names the role."""
    resp, _, _ = platform.launch(http, live_server, roles=roles, sub="who-1")
    assert resp.status_code == 303, resp.text
    page = http.get(live_server + resp.headers["Location"])
    assert page.status_code == 200 and urlsplit(page.url).path == landing
    if landing == HOME:
        assert '<dd data-testid="role">Observer</dd>' in page.text
    assert _membership(app, "who-1") == (role, is_admin, roles)


def test_role_changes_between_launches_follow_the_lms(live_server, platform, registered, http, app):
    platform.launch(http, live_server, roles=CANVAS_ROLES["student"], sub="who-2")
    assert _membership(app, "who-2")[0] == "technician"
    platform.launch(http, live_server, roles=CANVAS_ROLES["ta"], sub="who-2")
    assert _membership(app, "who-2")[0] == "manager"


def test_registration_role_mapping_applies_to_launches(live_server, platform, registered, http, app):
    with app.app_context():
        db.session.get(Registration, registered).role_mapping = {"Mentor": "manager"}
        db.session.commit()
    resp, _, _ = platform.launch(http, live_server, roles=CANVAS_ROLES["observer"], sub="who-3")
    assert resp.status_code == 303
    assert _membership(app, "who-3")[0] == "manager"


def test_map_role_cli_overrides_and_restores_the_default(live_server, platform, registered, http, app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["lti", "map-role", "--issuer", platform.issuer, "--client-id", platform.client_id,
                                 "TeachingAssistant", "technician"])
    assert result.exit_code == 0, result.output
    assert '"TeachingAssistant": "technician"' in result.output
    resp, _, _ = platform.launch(http, live_server, roles=CANVAS_ROLES["ta"], sub="ta-1")
    page = http.get(live_server + resp.headers["Location"])
    assert urlsplit(page.url).path == PORTFOLIO
    assert _membership(app, "ta-1")[0] == "technician"

    result = runner.invoke(args=["lti", "map-role", "--issuer", platform.issuer, "--client-id", platform.client_id,
                                 "TeachingAssistant", "default"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert db.session.get(Registration, registered).role_mapping is None
    platform.launch(http, live_server, roles=CANVAS_ROLES["ta"], sub="ta-1")
    assert _membership(app, "ta-1")[0] == "manager"


def test_map_role_cli_rejects_unknown_tool_roles_and_registrations(app, platform, registered):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["lti", "map-role", "--issuer", platform.issuer, "--client-id", platform.client_id,
                                 "Mentor", "superuser"])
    assert result.exit_code != 0 and "superuser" in result.output
    result = runner.invoke(args=["lti", "map-role", "--issuer", "https://nowhere.example.org", "--client-id", "x",
                                 "Mentor", "manager"])
    assert result.exit_code != 0 and "No registration" in result.output

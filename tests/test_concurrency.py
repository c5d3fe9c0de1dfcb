"""Two managers signing off the same review request at the same moment: real concurrent transactions (two
threads, each with its own app context, session and database connection). Exactly one sign-off is written; the
other manager gets DomainError "already_signed_off"."""
import threading
import time

import pytest
from sqlalchemy import func, select, text

from lti_tool.extensions import db
from lti_tool.models import AuditEntry, Membership, SignOff
from lti_tool.services import DomainError, reviews
from lti_tool.services.actors import Actor
from tests.conftest import IS_POSTGRES
from tests.support.competency_world import World

TIMEOUT = 20


def _actor(membership_id: int) -> Actor:
    membership = db.session.get(Membership, membership_id)
    return Actor(person=membership.person, course=membership.course, membership=membership)


def _sign_in_thread(app, membership_id, request_id, results, slot, start=None, signed=None, release=None,
                    backend_pid=None):
    """Sign off in a fresh app context (its own session and connection) and commit, like a request would."""
    with app.app_context():
        try:
            actor = _actor(membership_id)
            if backend_pid is not None and IS_POSTGRES:
                backend_pid[slot] = db.session.scalar(text("SELECT pg_backend_pid()"))
            if start is not None:
                start.wait(TIMEOUT)
            so = reviews.sign_off(actor, request_id, "competent", "observed", [], f"by slot {slot}")
            if signed is not None:
                signed.set()
            if release is not None:
                release.wait(TIMEOUT)
            db.session.commit()
            results[slot] = ("ok", so.id)
        except DomainError as exc:
            db.session.rollback()
            results[slot] = ("refused", exc.code, exc.status)
        except Exception as exc:  # a crash is a failure of the test, not a hang
            db.session.rollback()
            results[slot] = ("crash", repr(exc))
        finally:
            db.session.remove()


@pytest.fixture
def race(app, make):
    """Two managers of one course and n committed open review requests."""

    def build(n=1):
        world = World(make)
        other_manager = make.actor(world.course, "manager")
        request_ids = [world.submitted(actor=make.actor(world.course, "technician"))[0].id for _ in range(n)]
        ids = (world.manager.membership.id, other_manager.membership.id)
        db.session.commit()
        return ids, request_ids

    return build


def _outcome(app, request_id):
    with app.app_context():
        sign_offs = db.session.scalars(select(SignOff).where(SignOff.review_request_id == request_id)).all()
        audits = db.session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "sign_off.create", AuditEntry.entity_id.in_([s.id for s in sign_offs] or [0])))
        db.session.remove()
        return sign_offs, audits


def _check_one_winner(app, results, request_id):
    assert None not in results, results
    ok = [r for r in results if r[0] == "ok"]
    refused = [r for r in results if r[0] == "refused"]
    assert len(ok) == 1 and len(refused) == 1, results
    assert refused[0][1:] == ("already_signed_off", 409)
    sign_offs, audits = _outcome(app, request_id)
    assert [s.id for s in sign_offs] == [ok[0][1]]
    assert audits == 1


def test_simultaneous_sign_offs_leave_exactly_one(app, race):
    """Both threads released by a barrier at the same instant, several rounds. Runs on both databases."""
    (m1, m2), request_ids = race(n=5)
    for request_id in request_ids:
        barrier = threading.Barrier(2)
        results = [None, None]
        threads = [threading.Thread(target=_sign_in_thread, args=(app, m, request_id, results, slot),
                                    kwargs={"start": barrier}) for slot, m in enumerate((m1, m2))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(TIMEOUT)
        _check_one_winner(app, results, request_id)


def test_the_loser_waits_for_the_winner_then_is_refused(app, race):
    """Deterministic overlap: the first manager has signed but not committed when the second one starts.
    The second must wait (row lock on PostgreSQL, writer lock on SQLite), not sign a second time."""
    (m1, m2), (request_id,) = race()
    results = [None, None]
    signed, release = threading.Event(), threading.Event()
    first = threading.Thread(target=_sign_in_thread, args=(app, m1, request_id, results, 0),
                             kwargs={"signed": signed, "release": release})
    first.start()
    assert signed.wait(TIMEOUT)
    second = threading.Thread(target=_sign_in_thread, args=(app, m2, request_id, results, 1))
    second.start()
    time.sleep(0.5)
    assert results == [None, None]  # the second manager is blocked while the first holds the request
    release.set()
    first.join(TIMEOUT)
    second.join(TIMEOUT)
    assert results[0][0] == "ok"
    _check_one_winner(app, results, request_id)


@pytest.mark.postgres_only
def test_postgres_loser_waits_on_the_review_request_row_lock(app, race):
    """On PostgreSQL the second transaction waits in SELECT ... FOR UPDATE on the review request row."""
    (m1, m2), (request_id,) = race()
    results, pids = [None, None], [None, None]
    signed, release = threading.Event(), threading.Event()
    first = threading.Thread(target=_sign_in_thread, args=(app, m1, request_id, results, 0),
                             kwargs={"signed": signed, "release": release, "backend_pid": pids})
    first.start()
    assert signed.wait(TIMEOUT)
    second = threading.Thread(target=_sign_in_thread, args=(app, m2, request_id, results, 1),
                              kwargs={"backend_pid": pids})
    second.start()
    waiting = None
    with app.app_context():
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            waiting = db.session.execute(text(
                "SELECT wait_event_type, query FROM pg_stat_activity WHERE pid = :pid"), {"pid": pids[1]}
            ).first() if pids[1] else None
            db.session.rollback()
            if waiting is not None and waiting[0] == "Lock":
                break
            time.sleep(0.05)
        db.session.remove()
    release.set()
    first.join(TIMEOUT)
    second.join(TIMEOUT)
    assert waiting is not None and waiting[0] == "Lock", waiting
    assert "FOR UPDATE" in waiting[1] and "review_requests" in waiting[1]
    _check_one_winner(app, results, request_id)

"""The tasks. Each is idempotent: the database row it works on says whether there is anything left to do."""
import logging

from sqlalchemy import exists, select

from ..extensions import db
from ..lti.storage import purge_expired
from ..models import Course, ScoreOutbox
from ..models.advantage import PENDING
from ..models.base import utcnow
from ..services import grades, mailer, reminders, roster, transcript_exports
from ..services.prior_records import jobs as import_jobs
from . import enqueue, job, periodic

log = logging.getLogger(__name__)


@job("deliver_scores")
def deliver_scores():
    """Post due gradebook scores (the outbox keeps its own per-row back-off and order)."""
    counts = grades.deliver_due()
    if any(counts.values()):
        log.info("Scores: %s", counts)
    return counts


@job("build_export", retries=0)
def build_export(job_id: int):
    """Build one ZIP export; a second delivery finds the job claimed or finished and does nothing."""
    return transcript_exports.build_zip(job_id)


@job("import_records", retries=0)
def import_records(batch_id: int):
    """Write one queued prior-records import; a second delivery finds it claimed or finished and does nothing.
    (No retries here: a failure is reported on the page; a worker that died is the sweep's business.)"""
    if import_jobs.apply(batch_id):
        enqueue("deliver_scores")  # the imported sign-offs' gradebook scores, committed with the import
        return True
    return False


@job("sync_roster")
def sync_roster(course_id: int):
    course = db.session.get(Course, course_id)
    if course is not None:
        return roster.sync_if_stale(course)


@job("send_messages")
def send_messages(message_ids: list):
    return mailer.send_batch(message_ids)


@periodic("sweep", minute="*")
def sweep():
    """Queue again whatever the database says is unfinished, so nothing depends on the broker keeping a task."""
    now = utcnow()
    scores = db.session.scalar(select(exists().where(ScoreOutbox.status == PENDING,
                                                     ScoreOutbox.next_attempt_at <= now)))
    exports = transcript_exports.unfinished(now)
    imports = import_jobs.unfinished(now)
    messages = mailer.due(now)
    db.session.commit()  # what the tasks read is committed before they are queued
    if scores:
        enqueue("deliver_scores")
    for job_id in exports:
        enqueue("build_export", job_id)
    for batch_id in imports:
        enqueue("import_records", batch_id)
    for batch in mailer.batches(messages):
        enqueue("send_messages", batch)


@periodic("note_expiries", minute="7")
def note_expiries():
    """Expired sign-offs: noted in the audit log, the gradebook column back to pending."""
    if grades.queue_expiries():
        db.session.commit()
        enqueue("deliver_scores")


@periodic("plan_reminders", minute="*/15")
def plan_reminders():
    created = reminders.plan()
    db.session.commit()
    for batch in mailer.batches(created):
        enqueue("send_messages", batch)
    return len(created)


@periodic("refresh_rosters", minute="23")
def refresh_rosters():
    now = utcnow()
    stale = select(Course.id).where(Course.nrps_url.is_not(None), (Course.roster_synced_at.is_(None))
                                    | (Course.roster_synced_at < now - roster.STALE_AFTER))
    for course_id in db.session.scalars(stale).all():
        enqueue("sync_roster", course_id)


@periodic("purge_storage", minute="41")
def purge_storage():
    """Expired LTI launch state (states, nonces, launch data), day-old form submission keys, and prior-records
    files checked a day ago and never imported."""
    from .. import submissions

    return purge_expired() + submissions.purge_old() + import_jobs.purge_checked()


def run_periodic_once():
    """Every periodic job once, in this process (`flask lti worker --once`, cron, tests)."""
    for name in ("note_expiries", "plan_reminders", "refresh_rosters", "purge_storage", "sweep"):
        globals()[name]()
        db.session.commit()

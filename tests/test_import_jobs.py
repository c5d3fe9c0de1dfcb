"""The go-live import as a background task (issue 15): a checked file waits under a "checked" batch, Import queues
it, the task writes it in committed chunks with progress; a worker that dies mid-import leaves a running batch the
sweep resumes without creating anything twice; a failed import removes what it wrote and says why; checked files
nobody imports are purged after a day; imported sign-offs reach the gradebook once per (person, line item) and an
undo withdraws them. With a real `flask lti worker` process too."""
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from lti_tool.extensions import db
from lti_tool.models import (
    AuditEntry,
    ImportBatch,
    Person,
    ResourceLink,
    ScoreOutbox,
    SignOff,
)
from lti_tool.services import DomainError, NotFound, attachments, reviews
from lti_tool.services.actors import Actor
from lti_tool.services.prior_records import Options, importer, preview, undo
from lti_tool.services.prior_records import jobs as import_jobs
from lti_tool.tasks import enqueue, jobs
from tests.support.competency_world import World
from tests.support.queue import Worker, queue_settings, wait_for

ROWS = (b"Email,Name,Competency,Date assessed,Assessor name\r\n"
        b"tess@example.org,Tess Nguyen,CEN-CART,2024-02-01,Dana Lee\r\n"
        b"tess@example.org,Tess Nguyen,CEN-CART,2024-08-01,Dana Lee\r\n"
        b"tess@example.org,Tess Nguyen,REG-AUDIT,2024-03-01,Dana Lee\r\n"
        b"nora@example.org,Nora New,CEN-CART,2024-02-01,Dana Lee\r\n"
        b"nora@example.org,Nora New,REG-AUDIT,2024-04-01,Dana Lee\r\n")


@pytest.fixture
def world(make):
    w = World(make)
    w.tech.person.email, w.tech.person.name = "tess@example.org", "Tess Nguyen"
    w.tech.person.last_launch_at = datetime.now(UTC) - timedelta(days=3)
    w.admin = Actor(person=make.person(w.reg, is_admin=True, name="Ada Admin"), course=w.course)
    db.session.commit()
    return w


def queued(world, data=ROWS) -> int:
    """The page's two steps: a clean dry run stages the file, Import queues it. Returns the batch id."""
    options = Options(kind="sign_offs")
    plan = preview(world.admin, world.course.id, "prior.csv", data, options)
    assert plan.ok and len(plan.to_create) == 5
    batch = import_jobs.stage(world.admin, plan, data, options)
    db.session.commit()
    assert batch.status == "checked" and attachments.storage().exists(batch.storage_key)
    assert import_jobs.queue(world.admin, batch.id).status == "queued"
    db.session.commit()
    return batch.id


def signed(person_id=None) -> int:
    query = select(func.count()).select_from(SignOff)
    return db.session.scalar(query.where(SignOff.person_id == person_id) if person_id else query)


def test_the_task_imports_a_queued_file_in_chunks_with_progress(world, monkeypatch):
    monkeypatch.setattr(importer, "FLUSH_EVERY", 2)
    batch_id = queued(world)
    key = db.session.get(ImportBatch, batch_id).storage_key
    seen = []
    real = import_jobs.run

    def watching(*args, progress, **kwargs):
        def report(done, total):
            progress(done, total)
            # Committed by the task after each chunk: another connection (the page's poll) reads it.
            with db.engine.connect() as conn:
                seen.append(conn.execute(select(ImportBatch.status, ImportBatch.done_count, ImportBatch.total)
                                         .where(ImportBatch.id == batch_id)).one())
        return real(*args, progress=report, **kwargs)

    monkeypatch.setattr(import_jobs, "run", watching)
    enqueue("import_records", batch_id)  # memory:// runs it at once, in an app context of its own
    assert [tuple(s) for s in seen] == [("running", 2, 5), ("running", 4, 5), ("running", 5, 5)]
    db.session.expire_all()
    batch = db.session.get(ImportBatch, batch_id)
    assert batch.status == "applied" and batch.attempts == 1 and batch.finished_at is not None
    assert batch.summary["created"] == {"people": 1, "memberships": 1, "sign_offs": 5, "evidence": 5}
    assert batch.summary["skipped"] == 0
    assert import_jobs.progress(batch)["percent"] == 100 and import_jobs.progress(batch)["finished"]
    assert batch.storage_key is None and not attachments.storage().exists(key)
    assert signed() == 5 and db.session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.action == "import.applied")) == 1
    # Another tenant's administrator cannot see it.
    other = World(world.make)
    stranger = Actor(person=world.make.person(other.reg, is_admin=True), course=other.course)
    with pytest.raises(NotFound):
        import_jobs.batch_for(stranger, batch_id)
    # Delivered again (the broker redelivers, or the sweep): nothing is written twice.
    assert import_jobs.apply(batch_id) is False and signed() == 5


def test_a_worker_that_died_mid_import_is_resumed_by_the_sweep(app, world, monkeypatch):
    monkeypatch.setattr(importer, "FLUSH_EVERY", 2)
    batch_id = queued(world)
    assert import_jobs.claim(batch_id)

    class WorkerDied(BaseException):
        pass

    def die_after_first_chunk(done, total):
        db.session.commit()
        raise WorkerDied

    batch = db.session.get(ImportBatch, batch_id)
    with pytest.raises(WorkerDied):
        importer.run(world.admin, world.course.id, batch.filename, ROWS, Options(kind="sign_offs"),
                     progress=die_after_first_chunk, batch=batch)
    db.session.rollback()
    assert signed() == 2, "the first chunk was committed"
    batch = db.session.get(ImportBatch, batch_id)
    assert batch.status == "running"
    # While it runs it is not an import anyone can undo, and the page does not call it done.
    with pytest.raises(DomainError) as exc:
        undo(world.admin, batch_id)
    assert exc.value.code == "import_running"
    assert not import_jobs.progress(batch)["finished"]
    assert not import_jobs.claim(batch_id), "its heartbeat is recent: the worker may be alive"
    batch = db.session.get(ImportBatch, batch_id)
    batch.heartbeat_at = datetime.now(UTC) - timedelta(seconds=app.config["EXPORT_STALE_SECONDS"] + 60)
    db.session.commit()
    assert import_jobs.progress(batch)["status"] == "resuming"
    jobs.sweep()  # queues it again; memory:// runs it at once
    db.session.expire_all()
    batch = db.session.get(ImportBatch, batch_id)
    assert batch.status == "applied" and batch.attempts == 2
    assert signed() == 5 and signed(world.tech.person.id) == 3
    assert batch.summary["created"]["sign_offs"] == 5 and batch.summary["skipped"] == 0
    assert db.session.scalar(select(func.count()).select_from(Person).where(Person.email == "nora@example.org")) == 1


def test_an_import_that_fails_removes_what_it_wrote_and_says_why(world, monkeypatch):
    monkeypatch.setattr(importer, "FLUSH_EVERY", 2)
    batch_id = queued(world)
    calls = []
    real = importer.audit.record_many

    def disk_full_on_the_second_chunk(rows):
        calls.append(len(rows))
        if len(calls) == 3:  # the people, the first chunk, then this
            raise OSError("could not extend file: No space left on device")
        return real(rows)

    monkeypatch.setattr(importer.audit, "record_many", disk_full_on_the_second_chunk)
    enqueue("import_records", batch_id)
    db.session.expire_all()
    batch = db.session.get(ImportBatch, batch_id)
    assert batch.status == "failed" and batch.undone_at is not None
    assert "No space left on device" in batch.error and "What it had written was removed." in batch.error
    assert signed() == 0
    assert db.session.scalar(select(func.count()).select_from(Person).where(Person.email == "nora@example.org")) == 0
    assert import_jobs.progress(batch)["finished"] and batch.storage_key is None


def test_a_file_that_no_longer_checks_out_fails_readably(world):
    batch_id = queued(world)
    # Between the dry run and the import the framework's editor renamed a competency the file names.
    world.cart.code = "CEN-CART-2"
    db.session.commit()
    enqueue("import_records", batch_id)
    db.session.expire_all()
    batch = db.session.get(ImportBatch, batch_id)
    assert batch.status == "failed" and "3 row(s) have problems" in batch.error and signed() == 0
    assert batch.undone_at is None, "nothing was written, so there was nothing to undo"


def test_a_checked_file_gone_from_storage_fails_readably(world):
    batch_id = queued(world)
    attachments.storage().delete(db.session.get(ImportBatch, batch_id).storage_key)
    enqueue("import_records", batch_id)
    db.session.expire_all()
    batch = db.session.get(ImportBatch, batch_id)
    assert batch.status == "failed" and batch.error == ("The checked file is no longer stored; choose it again "
                                                        "and check it.")


def test_checked_files_nobody_imported_are_purged_after_a_day(world):
    options = Options(kind="sign_offs")
    plan = preview(world.admin, world.course.id, "prior.csv", ROWS, options)
    old = import_jobs.stage(world.admin, plan, ROWS, options)
    fresh = import_jobs.stage(world.admin, plan, ROWS, options)
    old.created_at = datetime.now(UTC) - timedelta(hours=25)
    db.session.commit()
    old_id, old_key, fresh_key = old.id, old.storage_key, fresh.storage_key
    jobs.purge_storage()
    db.session.commit()
    assert db.session.get(ImportBatch, old_id) is None and not attachments.storage().exists(old_key)
    assert attachments.storage().exists(fresh_key) and db.session.get(ImportBatch, fresh.id).status == "checked"
    with pytest.raises(DomainError):  # the purged check cannot be imported any more
        import_jobs.queue(world.admin, old_id)


def test_imported_sign_offs_are_scored_once_per_person_and_column_and_undo_withdraws_them(world):
    lms = "https://lms.example.org/lineitems/"
    for n, target in ((7, {"type": "competency", "id": world.cart.id}), (8, {"type": "department", "id": "central"}),
                      (9, {"type": "competency", "id": world.audit_comp.id})):
        db.session.add(ResourceLink(course_id=world.course.id, resource_link_id=f"rl-{n}", title=f"Column {n}",
                                    target=target, lineitem_url=f"{lms}{n}"))
        db.session.flush()
    db.session.commit()
    batch_id = queued(world)
    enqueue("import_records", batch_id)
    db.session.expire_all()
    rows = db.session.scalars(select(ScoreOutbox).order_by(ScoreOutbox.id)).all()
    # Tess (launched): one score per column, from the latest sign-off counting toward it (Cart fill of Aug 1,
    # 2024 for both the Cart fill and the central department's column); her controlled-substance audit of
    # March 2024 has expired (12 months), so its column is left to the expiry job. Nora (not launched yet):
    # none, the LMS does not know her yet.
    assert [(r.person_id, r.lineitem_url) for r in rows] == [(world.tech.person.id, f"{lms}7"),
                                                             (world.tech.person.id, f"{lms}8")]
    assert all(r.payload["gradingProgress"] == "FullyGraded" and "(imported)" in r.payload["comment"]
               for r in rows)
    assert all(r.payload["userId"] == world.tech.person.sub for r in rows)
    # Tess also holds Cart fill from a sign-off made in the tool: after the undo the columns it counts toward
    # show that one again; the audit column goes back to pending, as after a revocation.
    request = world.submitted(world.tech, competencies=[world.cart])[0]
    reviews.sign_off(world.manager, request.id, "competent", "observed", [])
    db.session.commit()
    before = db.session.scalar(select(func.max(ScoreOutbox.id)))
    undo(world.admin, batch_id)
    db.session.commit()
    after = db.session.scalars(select(ScoreOutbox).where(ScoreOutbox.id > before).order_by(ScoreOutbox.id)).all()
    assert [(r.lineitem_url, r.payload["gradingProgress"]) for r in after] == [
        (f"{lms}7", "FullyGraded"), (f"{lms}8", "FullyGraded"), (f"{lms}9", "Pending")]
    assert all(world.manager.person.display_name in r.payload["comment"] for r in after[:2])
    assert after[2].payload["comment"] == "Import of prior.csv undone: the prior record no longer counts."


def test_a_real_worker_process_runs_the_import(app, world, tmp_path):
    from huey import RedisHuey

    from lti_tool.tasks import make_huey

    settings = queue_settings(tmp_path, ATTACHMENT_DIR=app.config["ATTACHMENT_DIR"])
    batch_id = queued(world)
    worker = Worker(settings, tmp_path / "worker.log", "--no-periodic", "--max-delay", "0.5")
    try:
        broker = make_huey(settings["TASK_QUEUE_URL"], settings["TASK_QUEUE_NAME"])

        def import_records(batch_id):  # what the web process queues, by name
            raise AssertionError("runs in the worker")

        import_records.__module__ = "lti_tool.tasks.jobs"
        broker.task(name="import_records")(import_records)(batch_id)

        def finished():
            db.session.expire_all()
            return db.session.get(ImportBatch, batch_id).status in ("applied", "failed")

        wait_for(finished, 120, worker.output)
        batch = db.session.get(ImportBatch, batch_id)
        assert batch.status == "applied", batch.error
        assert batch.done_count == batch.total == 5 and signed() == 5
    finally:
        worker.stop()
        if settings["TASK_QUEUE_URL"].startswith("redis"):
            RedisHuey(settings["TASK_QUEUE_NAME"], url=settings["TASK_QUEUE_URL"]).storage.flush_all()


def test_a_worker_killed_mid_import_is_finished_by_the_sweep(app, world, tmp_path, monkeypatch):
    """A real worker process is killed (SIGKILL) after its first committed chunk; the sweep hands the import to
    another worker (here this process), which writes the rest: every row once."""
    from huey import RedisHuey

    from lti_tool.tasks import make_huey

    lines = ["Email,Name,Competency,Date assessed"]
    for i in range(1000):
        for code in ("CEN-CART", "REG-AUDIT", "IV-GARB"):
            lines.append(f"bulk{i}@example.org,Bulk Tech {i},{code},2024-0{1 + i % 9}-1{i % 10}")
    data = ("\r\n".join(lines) + "\r\n").encode()
    options = Options(kind="sign_offs")
    plan = preview(world.admin, world.course.id, "bulk.csv", data, options)
    assert plan.ok and len(plan.to_create) == 3000
    batch_id = import_jobs.stage(world.admin, plan, data, options).id
    import_jobs.queue(world.admin, batch_id)
    db.session.commit()
    settings = queue_settings(tmp_path, ATTACHMENT_DIR=app.config["ATTACHMENT_DIR"])
    worker = Worker(settings, tmp_path / "worker.log", "--no-periodic", "--max-delay", "0.5")
    try:
        broker = make_huey(settings["TASK_QUEUE_URL"], settings["TASK_QUEUE_NAME"])

        def import_records(batch_id):
            raise AssertionError("runs in the worker")

        import_records.__module__ = "lti_tool.tasks.jobs"
        broker.task(name="import_records")(import_records)(batch_id)

        def first_chunk_written():
            db.session.expire_all()
            return db.session.get(ImportBatch, batch_id).done_count > 0

        wait_for(first_chunk_written, 120, worker.output, worker.proc)
        worker.proc.kill()
        worker.proc.wait(timeout=20)
    finally:
        worker.stop()
        if settings["TASK_QUEUE_URL"].startswith("redis"):
            RedisHuey(settings["TASK_QUEUE_NAME"], url=settings["TASK_QUEUE_URL"]).storage.flush_all()
    db.session.expire_all()
    batch = db.session.get(ImportBatch, batch_id)
    assert batch.status == "running" and 0 < batch.done_count < 3000, (batch.status, batch.done_count)
    assert import_jobs.unfinished() == [], "its heartbeat is recent: the worker may be alive"
    written = signed()
    assert 0 < written < 3000
    monkeypatch.setitem(app.config, "EXPORT_STALE_SECONDS", 0)
    jobs.sweep()  # memory:// in this process: the task runs at once
    db.session.expire_all()
    batch = db.session.get(ImportBatch, batch_id)
    assert batch.status == "applied" and batch.attempts == 2, batch.error
    assert signed() == 3000 and batch.done_count == 3000
    assert batch.summary["created"]["sign_offs"] == 3000 and batch.summary["created"]["people"] == 1000
    assert db.session.scalar(select(func.count()).select_from(Person).where(Person.email.like("bulk%"))) == 1000


def test_a_claimed_persons_imported_sign_offs_reach_the_gradebook_at_their_first_launch(world):
    from lti_tool.models import Deployment
    from lti_tool.services.launches import CLAIM, record_launch

    db.session.add(ResourceLink(course_id=world.course.id, resource_link_id="rl-cart", title="Cart fill",
                                target={"type": "competency", "id": world.cart.id},
                                lineitem_url="https://lms.example.org/lineitems/7"))
    deployment = db.session.scalars(select(Deployment).where(Deployment.registration_id == world.reg.id)).first()
    db.session.commit()
    batch_id = queued(world)
    enqueue("import_records", batch_id)
    db.session.expire_all()
    assert {r.person_id for r in db.session.scalars(select(ScoreOutbox))} == {world.tech.person.id}
    nora_id = db.session.scalars(select(Person.id).where(Person.email == "nora@example.org")).one()
    person, course, _ = record_launch(world.reg, deployment, {
        "sub": "nora-9", "email": "Nora@Example.org", "name": "Nora New",
        CLAIM + "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"],
        CLAIM + "context": {"id": world.course.context_id}})
    db.session.commit()
    assert person.id == nora_id and person.sub == "nora-9" and course.id == world.course.id
    scores = db.session.scalars(select(ScoreOutbox).where(ScoreOutbox.person_id == nora_id)).all()
    # Her one Cart fill sign-off counts toward the column: one score, under the sub the LMS knows her by.
    assert [(s.lineitem_url, s.payload["userId"], s.payload["gradingProgress"]) for s in scores] == [
        ("https://lms.example.org/lineitems/7", "nora-9", "FullyGraded")]

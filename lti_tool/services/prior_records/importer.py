"""Go-live import of prior records into one course of the administrator's tenant: historical sign-offs,
certifications and continuing education.

- `preview` reads the file and checks every row without writing anything (the dry run): each row is "create",
  "already imported" (its natural key exists: re-running an import creates nothing twice) or a list of problems.
- `run` applies a file with no problems, all or nothing, as one ImportBatch; every record carries its natural
  key (ImportedRecord), and the audit log gets an entry per record plus one for the batch.
- `batches.undo` removes everything a batch created, as long as nothing builds on it yet.
- Checking a row (people, dates, the competency and rating, the certification or CE fields) is `rows`' job.
- People are matched in the tenant by LMS id (the LTI `sub`) or e-mail; anyone else is created "not launched
  yet" (no launch date) and added to the course as a technician.
- Imported sign-offs are attestations by the importer (signer = the administrator, role "imported") of a prior
  record; the original assessor's name and role, the source file and row are kept in the evidence they attest,
  so they are part of the hashed snapshot.

`run` is a plain function of (actor, course, file, options, progress, batch): the CLI runs it inline in one
transaction; the page's Import queues the batch and a queue worker runs it in committed, idempotent chunks
(jobs.py). bench/imports.py measures 5,000 rows.
"""
from dataclasses import dataclass, field
from datetime import timedelta

from flask_babel import gettext as _
from sqlalchemy import func, insert, or_, select

from ...extensions import db
from ...lti.roles import TECHNICIAN
from ...models import (
    Evidence,
    EvidenceCompetency,
    ImportBatch,
    ImportedRecord,
    Membership,
    Person,
    SignOff,
)
from ...models.evidence import DRAFT, SIGNED_OFF
from ...models.imports import APPLIED
from ...models.people import IMPORTED_SUB_PREFIX
from .. import DomainError, Forbidden, audit, grades, localtime, scope, status, status_store
from ..attestation import evidence_document, evidence_hash, snapshot
from . import columns, files
from . import rows as row_checks
from .batches import record_ids

IMPORTED_ROLE = "imported"
FLUSH_EVERY = 500


@dataclass
class Options:
    kind: str
    mapping: dict = field(default_factory=dict)  # {field key: header text} chosen by hand
    technician: str = ""  # e-mail or LMS id for files about one person (a CPE Monitor transcript)


@dataclass
class Plan:
    kind: str
    filename: str
    header: list
    mapping: dict  # {field key: column index}
    rows: list
    new_people: dict  # {person key: (email, lms id, name)}
    missing_required: list

    @property
    def problems(self) -> list:
        return [r for r in self.rows if r.problems]

    @property
    def to_create(self) -> list:
        return [r for r in self.rows if not r.problems and not r.skip]

    @property
    def skipped(self) -> list:
        return [r for r in self.rows if r.skip]

    @property
    def ok(self) -> bool:
        return not self.problems and not self.missing_required


def _admin_course(actor, course_id: int):
    if not actor.is_admin:
        raise Forbidden(_("Importing prior records is for the LMS administrator."))
    return scope.course(actor, course_id)


def _mapping(kind: str, header: list, chosen: dict) -> dict:
    found = columns.auto_mapping(kind, header)
    keys = {f.key for f in columns.FIELDS[kind]}
    normalized = [columns.normalize(h) for h in header]
    for key, header_text in (chosen or {}).items():
        if key not in keys:
            raise DomainError(f"'{key}' is not a field of this import.", code="invalid_mapping")
        if not header_text:
            found.pop(key, None)
            continue
        if columns.normalize(header_text) not in normalized:
            raise DomainError(f"The file has no column '{header_text}'.", code="invalid_mapping",
                              fields={key: f"No column '{header_text}' in the file."})
        found[key] = normalized.index(columns.normalize(header_text))
    return found


def _people(registration_id: int, rows, technician: str) -> dict:
    """{("email", x) or ("sub", x): Person} for every e-mail and LMS id in the file, in one query."""
    emails = {r["email"].lower() for r in rows if r.get("email")}
    subs = {r["lms_id"] for r in rows if r.get("lms_id")}
    if technician:
        (emails if "@" in technician else subs).add(technician.lower() if "@" in technician else technician)
    if not emails and not subs:
        return {}
    found = {}
    for person in db.session.scalars(select(Person).where(
            Person.registration_id == registration_id,
            or_(func.lower(Person.email).in_(emails), Person.sub.in_(subs))).order_by(Person.id)):
        if person.email:
            found.setdefault(("email", person.email.lower()), person)
        found.setdefault(("sub", person.sub), person)
    return found


def _cell(values: list, mapping: dict, key: str):
    index = mapping.get(key)
    return values[index] if index is not None and index < len(values) else None


def preview(actor, course_id: int, filename: str, data: bytes, options: Options) -> Plan:
    """The dry run: every row checked, nothing written."""
    course = _admin_course(actor, course_id)
    if options.kind not in columns.FIELDS:
        raise DomainError(_("Choose what the file holds: sign-offs, certifications or continuing education."),
                          code="invalid_kind", fields={"kind": "Choose a kind of record."})
    table = files.read(filename, data, columns.known_header_counter(options.kind, (options.mapping or {}).values()))
    mapping = _mapping(options.kind, table.header, options.mapping)
    missing = [f.label for f in columns.FIELDS[options.kind] if f.required and f.key not in mapping]
    if not ({"email", "lms_id"} & set(mapping)) and not options.technician:
        missing.append("Technician email or LMS id (or name the technician for the whole file)")
    raw_rows = [(n, {f.key: _cell(values, mapping, f.key) for f in columns.FIELDS[options.kind]})
                for n, values in table.rows]
    text_rows = [(n, {k: files.text_of(v) if k not in ("assessed", "expires", "issued", "completed") else v
                      for k, v in r.items()}) for n, r in raw_rows]
    tz = localtime.zone(course.registration)
    context = {
        "course": course, "tz": tz, "today": localtime.today(tz),
        "people": _people(course.registration_id, [r for _n, r in text_rows], options.technician.strip()),
        "competencies": {c.code.lower(): c for c in status.course_competencies(course)},
        "existing": set(),
    }
    rows = [row_checks.PlannedRow(number=n) for n, _row in text_rows]
    if not missing:
        checker = {"sign_offs": row_checks.check_sign_off, "certifications": row_checks.check_certification,
                   "ce": row_checks.check_ce}
        for planned, (_n, values) in zip(rows, text_rows, strict=True):
            row_checks.resolve_person(planned, values, options.technician.strip(), context)
            checker[options.kind](planned, values, context)
        keys = [r.key for r in rows if r.key]
        existing = set()
        for start in range(0, len(keys), 900):
            existing |= set(db.session.scalars(select(ImportedRecord.natural_key).where(
                ImportedRecord.registration_id == course.registration_id,
                ImportedRecord.natural_key.in_(keys[start:start + 900]))))
        seen: dict = {}
        for r in rows:
            if not r.key or r.problems:
                continue
            if r.key in existing:
                r.skip = "Already imported"
            elif r.key in seen:
                r.problems.append(f"Same record as row {seen[r.key]}.")
            else:
                seen[r.key] = r.number
    new_people = {r.person_key: r.values["new_person"] for r in rows
                  if not r.problems and not r.skip and r.values.get("new_person")}
    return Plan(kind=options.kind, filename=filename, header=table.header, mapping=mapping, rows=rows,
                new_people=new_people, missing_required=missing)


def run(actor, course_id: int, filename: str, data: bytes, options: Options, progress=None,
        batch: ImportBatch | None = None) -> ImportBatch:
    """Apply a file whose dry run shows no problems as one batch. Inline (the CLI, `batch` None) it is all or
    nothing: the caller commits. A queue worker passes the batch it claimed and commits in `progress`, which is
    called after every chunk of FLUSH_EVERY rows with (rows done, rows to do): the chunks are idempotent (a row
    whose natural key exists is skipped), so a worker that dies mid-import leaves a running batch that the next
    attempt finishes. Either way the batch says "applied" only once every row is written."""
    plan = preview(actor, course_id, filename, data, options)
    if not plan.ok:
        raise DomainError(_("Nothing was imported: %(n)s row(s) have problems. Fix them and try again.",
                            n=len(plan.problems)) + (" " + _("Columns are missing: %(names)s.",
                                                             names=", ".join(plan.missing_required))
                                                     if plan.missing_required else ""),
                          code="import_refused")
    course = scope.course(actor, course_id)
    # Rows go to the database in INSERTs of 100 rows: every such statement has the same text, which the driver
    # converts once (psycopg re-parses each distinct statement; 1,000-row statements cost more than the rows).
    db.session.connection().execution_options(insertmanyvalues_page_size=100)
    if batch is None:
        batch = ImportBatch(registration_id=course.registration_id, course_id=course.id, actor_id=actor.person.id,
                            kind=plan.kind, filename=(filename or "upload")[:255], status=APPLIED)
        db.session.add(batch)
        db.session.flush()
    tz = localtime.zone(course.registration)
    people = _create_people(actor, batch, course, plan)
    members = set(db.session.scalars(select(Membership.person_id).where(Membership.course_id == course.id)))
    # One person's rows together: a chunk then touches few people, and the stored status of each (person,
    # competency) is judged once, not again in every chunk that has one of their rows (files often list
    # competency by competency).
    todo = sorted(plan.to_create, key=lambda row: (row.person_key, row.number))
    for start in range(0, len(todo), FLUSH_EVERY):
        chunk = todo[start:start + FLUSH_EVERY]
        # The chunk's pairs are judged once, after its evidence and its sign-offs are both written.
        with status_store.deferred():
            _write_chunk(actor, batch, course, plan.kind, chunk, people, members, tz)
        if progress:
            progress(start + len(chunk), len(todo))
    # What this batch holds (over every attempt): a resumed import finds the rows of its earlier attempts
    # "already imported" in its own plan.
    counts = dict(db.session.execute(select(ImportedRecord.entity_type, func.count()).where(
        ImportedRecord.batch_id == batch.id).group_by(ImportedRecord.entity_type)).all())
    own_rows = db.session.scalar(select(func.count(func.distinct(ImportedRecord.row_number))).where(
        ImportedRecord.batch_id == batch.id, ImportedRecord.entity_type.in_(("evidence", "sign_offs"))))
    created = {name: counts.get(name, 0) for name in ("people", "memberships", "sign_offs", "evidence")}
    batch.summary = {"created": created, "skipped": len(plan.rows) - own_rows, "rows": len(plan.rows),
                     "mapping": {k: plan.header[i] for k, i in plan.mapping.items()}}
    batch.status, batch.done_count, batch.total = APPLIED, own_rows, own_rows
    audit.record(actor, "import.applied", batch, after={"kind": plan.kind, "filename": batch.filename,
                                                        **batch.summary}, course_id=course.id)
    if plan.kind == "sign_offs":
        grades.on_imported(course, record_ids(batch.id, "sign_offs"))
    if progress and not todo:
        progress(0, 0)
    return batch


def _write_chunk(actor, batch, course, kind: str, chunk: list, people: dict, members: set, tz) -> None:
    """One chunk in three flushes (memberships and evidence; sign-offs; natural keys and audit entries), so
    statements grow with the number of chunks rather than rows."""
    written = []  # (row, person, evidence, membership or None)
    for row in chunk:
        person = row.values.get("person")
        if person is None:
            person = people[row.person_key]
            row.key = row_checks.natural_key(f"id:{person.id}", *row.values["key_parts"])
        membership = None
        if person.id not in members:
            membership = Membership(person_id=person.id, course_id=course.id, role=TECHNICIAN, lti_roles=[],
                                    active=True, source="import")
            db.session.add(membership)
            members.add(person.id)
        written.append((row, person, _new_evidence(batch, course, person, row, tz), membership))
    db.session.flush()
    sign_offs = {}
    if kind == "sign_offs":
        for row, person, evidence, _ in written:
            sign_offs[row.number] = _new_sign_off(actor, course, person, evidence, row)
        db.session.flush()
    keys, entries = [], []
    for row, person, evidence, membership in written:
        if membership is not None:
            _remember(batch, row_checks.natural_key("membership", batch.id, person.id, course.id), membership,
                      row.number, keys)
        sign_off = sign_offs.get(row.number)
        if sign_off is not None:
            _remember(batch, row.key, sign_off, row.number, keys)
            _remember(batch, row_checks.natural_key("evidence-of", row.key), evidence, row.number, keys)
            entries.append(audit.values(actor, "sign_off.imported", sign_off,
                                        after=_sign_off_facts(sign_off, row, batch), course_id=course.id))
        else:
            _remember(batch, row.key, evidence, row.number, keys)
            entries.append(audit.values(actor, "evidence.imported", evidence, after={
                "kind": evidence.kind, "title": evidence.title, "person_id": person.id, "batch_id": batch.id,
                "row": row.number}, course_id=course.id))
    db.session.execute(insert(ImportedRecord), keys)
    audit.record_many(entries)


def _remember(batch: ImportBatch, key: str, entity, row_number: int | None, into: list):
    """The natural key of a record the batch created, collected in `into` for one insert."""
    into.append({"batch_id": batch.id, "registration_id": batch.registration_id, "natural_key": key,
                 "entity_type": entity.__tablename__, "entity_id": entity.id, "row_number": row_number})


def _create_people(actor, batch, course, plan: Plan) -> dict:
    made = {}
    for key, (email, sub, name) in plan.new_people.items():
        person = Person(registration_id=course.registration_id, sub=sub or f"{IMPORTED_SUB_PREFIX}{email}", email=email,
                        name=name, last_launch_at=None)
        db.session.add(person)
        made[key] = person
    db.session.flush()
    keys = []
    for key, person in made.items():
        _remember(batch, row_checks.natural_key("person", course.registration_id, key), person, None, keys)
    if keys:
        db.session.execute(insert(ImportedRecord), keys)
    audit.record_many([audit.values(actor, "person.imported", person, after={
        "email": person.email, "sub": person.sub, "name": person.name, "batch_id": batch.id}, course_id=course.id)
        for person in made.values()])
    return made


def _new_evidence(batch, course, person, row: row_checks.PlannedRow, tz) -> Evidence:
    """The evidence a row creates (unflushed): the prior record an imported sign-off attests, or the
    certification or CE item itself (a draft the technician and their manager can see and verify)."""
    v = row.values
    if "competency" not in v:
        evidence = Evidence(person_id=person.id, course_id=course.id, kind=v["kind"], title=v["title"],
                            data={**v["data"], "prior_record": True, "import_batch_id": batch.id}, status=DRAFT,
                            revision=1)
        evidence.attachments = []
        db.session.add(evidence)
        return evidence
    competency = v["competency"]
    # Noon local time on the day assessed: the day stays the same in every US time zone.
    v["assessed_at"] = localtime.start_of(v["assessed"], tz) + timedelta(hours=12)
    if v["expires"]:
        v["expires_at"] = localtime.end_of(v["expires"], tz)
    elif v["interval"]:
        v["expires_at"] = status.add_months(v["assessed_at"], v["interval"]) if v["level"].get("proficient") \
            else None
    else:
        v["expires_at"] = status.expiry_for(competency, v["assessed_at"], bool(v["level"].get("proficient")))
    data = {"prior_record": True, "assessed_date": v["assessed"].isoformat(),
            "prior_assessor_name": v["assessor_name"] or None, "prior_assessor_role": v["assessor_role"] or None,
            "notes": v["note"] or None, "source_file": batch.filename, "source_row": row.number,
            "import_batch_id": batch.id}
    evidence = Evidence(person_id=person.id, course_id=course.id, kind=(competency.evidence_kinds or
                                                                         ["cross_training"])[0],
                        title=f"Prior record: {competency.code} {competency.title}"[:300],
                        data={k: val for k, val in data.items() if val is not None}, status=SIGNED_OFF,
                        revision=1, created_at=v["assessed_at"], submitted_at=v["assessed_at"])
    evidence.competency_links = [EvidenceCompetency(competency_id=competency.id)]
    evidence.attachments = []
    db.session.add(evidence)
    return evidence


def _new_sign_off(actor, course, person, evidence: Evidence, row: row_checks.PlannedRow) -> SignOff:
    """The importer's attestation of a prior record (unflushed), made like every sign-off: the rating on the
    framework's scale, the hash and snapshot of the evidence, never edited afterwards."""
    v, level = row.values, row.values["level"]
    document = evidence_document(evidence)
    sign_off = SignOff(
        review_request_id=None, person_id=person.id, competency_id=v["competency"].id, course_id=course.id,
        evidence_id=evidence.id, signer_id=actor.person.id, signer_name=actor.person.display_name,
        signer_role=IMPORTED_ROLE, rating_code=level["code"], rating_label=level.get("label") or level["code"],
        proficient=bool(level.get("proficient")), method=v["method"], checklist_seen=[],
        comment=v["note"] or None, evidence_revision=1, evidence_hash=evidence_hash(document),
        evidence_snapshot=snapshot(evidence, document), signed_at=v["assessed_at"], expires_at=v["expires_at"])
    db.session.add(sign_off)
    return sign_off


def _sign_off_facts(sign_off: SignOff, row: row_checks.PlannedRow, batch) -> dict:
    v = row.values
    return {"competency": v["competency"].code, "person_id": sign_off.person_id, "assessed": v["assessed"],
            "expires_at": sign_off.expires_at, "rating": sign_off.rating_code, "method": sign_off.method,
            "prior_assessor_name": v["assessor_name"], "prior_assessor_role": v["assessor_role"],
            "batch_id": batch.id, "row": row.number}


# --- Undo and listing ---------------------------------------------------------------------------------------

"""Keeps the stored status (models/status.py) equal to what services/status.py's rule makes of the history, in the
same transaction as every change.

One place, not one call per workflow step: mapper events note which (technician, competency) pairs a flush
touched (sign-offs, revocations, review requests, evidence and its competency links), and after the flush the
pairs are judged again from their history (status.history, as_of None) and their rows replaced. The two
compare-and-set UPDATEs of the workflow, which bypass the unit of work, note their pair with touch(); the audit
row every change writes flushes right after. Before a commit anything still noted is settled.

Requirements (issue 15) are part of the row: a requirement written or retired notes its course's technicians, a
membership whose department, job role, assignment date, role or activity changed notes its person. Their history
has not changed, so only the requirement columns of their rows are brought up to date, set-based
(_apply_requirements; pairs without any history keep a row only while required): a requirement for a course of
thousands of technicians is a few statements, not a judgement of every pair.

Concurrency: the people whose status is rewritten are locked (FOR UPDATE, in id order) before their history
is read, so two transactions changing one technician's record run one after the other, and the second reads
what the first committed (PostgreSQL's READ COMMITTED takes a new snapshot per statement; SQLite has one
writer at a time anyway).
"""
from contextlib import contextmanager
from dataclasses import replace

from sqlalchemy import (
    BigInteger,
    Date,
    and_,
    column,
    delete,
    event,
    func,
    insert,
    inspect,
    literal,
    select,
    tuple_,
    update,
    values,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from ..extensions import db
from ..models import (
    Course,
    Evidence,
    EvidenceCompetency,
    Membership,
    Person,
    Requirement,
    ReviewRequest,
    SignOff,
    SignOffRevocation,
    StoredStatus,
)
from ..models.base import among, utcnow
from . import requirements, status

_PAIRS, _EVIDENCE, _SIGN_OFFS, _LINKS = "status_pairs", "status_evidence", "status_sign_offs", "status_links"
_DEFERRED = "status_deferred"
_PEOPLE, _COURSES = "status_people", "status_courses"
_KEYS = (_PAIRS, _EVIDENCE, _SIGN_OFFS, _LINKS, _PEOPLE, _COURSES)
_COLUMNS = ("state", *status.STORED_FIELDS)
# Membership attributes that decide which requirements apply (a launch's last_launch_at does not).
_TARGETED = ("department", "job_role", "assigned_on", "active", "role", "course_id", "person_id")


def _noted(session, key) -> set:
    return session.info.setdefault(key, set())


def touch(person_id: int, competency_ids) -> None:
    """Note pairs changed outside the unit of work (a bulk UPDATE); they are settled at the next flush."""
    _noted(db.session, _PAIRS).update((person_id, c) for c in competency_ids)


def touch_people(person_ids) -> None:
    """Note people whose requirements may have changed outside the unit of work (a launch's upsert of their
    membership); their required pairs are judged again at the next flush."""
    _noted(db.session, _PEOPLE).update(person_ids)


# --- What a flush touched ----------------------------------------------------------------------------------

def _noting(key: str, value_of):
    """A mapper listener that notes `value_of(row)` under `key` in the row's session (judged again at the flush)."""
    def listener(mapper, connection, target):
        session = Session.object_session(target)
        if session is not None:
            _noted(session, key).add(value_of(target))
    return listener


_on_pair = _noting(_PAIRS, lambda row: (row.person_id, row.competency_id))
_on_revocation = _noting(_SIGN_OFFS, lambda row: row.sign_off_id)
_on_evidence = _noting(_EVIDENCE, lambda row: row.id)
# A link removed from an evidence item is deleted as an orphan: the pair is known only from the row.
_on_link = _noting(_LINKS, lambda row: (row.evidence_id, row.competency_id))
_on_requirement = _noting(_COURSES, lambda row: row.course_id)


def _on_membership(mapper, connection, target):
    session = Session.object_session(target)
    if session is None:
        return
    state = inspect(target)
    if state.persistent and not any(state.attrs[name].history.has_changes() for name in _TARGETED):
        return
    _noted(session, _PEOPLE).add(target.person_id)


for _model, _listener in ((Requirement, _on_requirement), (Membership, _on_membership), (SignOff, _on_pair),
                          (ReviewRequest, _on_pair), (SignOffRevocation, _on_revocation),
                          (Evidence, _on_evidence), (EvidenceCompetency, _on_link)):
    for _name in ("after_insert", "after_update", "after_delete"):
        event.listen(_model, _name, _listener)


def _pending(session) -> bool:
    return any(session.info.get(key) for key in _KEYS)


def _take(session) -> set:
    """Every pair noted so far, resolved to (person_id, competency_id); the notes are cleared."""
    pairs = set(session.info.pop(_PAIRS, ()))
    evidence_ids = session.info.pop(_EVIDENCE, set())
    sign_off_ids = session.info.pop(_SIGN_OFFS, set())
    links = session.info.pop(_LINKS, set())
    if evidence_ids:
        pairs.update(session.execute(
            select(Evidence.person_id, EvidenceCompetency.competency_id)
            .join(EvidenceCompetency, EvidenceCompetency.evidence_id == Evidence.id)
            .where(Evidence.id.in_(evidence_ids))).all())
    if links:
        people = dict(session.execute(select(Evidence.id, Evidence.person_id).where(
            Evidence.id.in_({evidence_id for evidence_id, _ in links}))).all())
        pairs.update((people[e], c) for e, c in links if e in people)
    if sign_off_ids:
        pairs.update(session.execute(select(SignOff.person_id, SignOff.competency_id).where(
            SignOff.id.in_(sign_off_ids))).all())
    return pairs


def _take_people(session) -> set:
    """The people whose requirements may have changed (noted directly, or as members of a course whose
    requirements were written); the notes are cleared."""
    people = set(session.info.pop(_PEOPLE, ()))
    courses = session.info.pop(_COURSES, set())
    if courses:
        people.update(session.scalars(select(Membership.person_id).where(Membership.course_id.in_(courses))))
    return people


def _settle(session) -> None:
    with session.no_autoflush:
        # Both lists are taken before anything is written: the writes below flush nothing, but a pair noted for
        # its history must not be lost if the requirement pass runs first.
        pairs, people = _take(session), _take_people(session)
        if pairs or people:
            # Every person either pass writes, locked once in id order (two lock passes could deadlock).
            _lock(session, people | {p for p, _ in pairs})
        if people:
            _apply_requirements(session, people)
        if pairs:
            _rewrite(session, pairs, locked=True)


@event.listens_for(Session, "after_flush_postexec")
def _after_flush(session, flush_context):
    if not session.info.get(_DEFERRED):
        _settle(session)


@contextmanager
def deferred():
    """Within the block, flushes only note the pairs they touch; they are judged once, when the block ends (or
    at a commit inside it): an import that writes a chunk's evidence, then its sign-offs, judges each pair once
    instead of after every flush. Reads inside the block may see stored rows that are not yet settled."""
    session = db.session()
    session.info[_DEFERRED] = True
    try:
        yield
    finally:
        session.info.pop(_DEFERRED, None)
    _settle(session)


@event.listens_for(Session, "before_commit")
def _before_commit(session):
    if _pending(session):
        _settle(session)


# --- Rewriting rows ----------------------------------------------------------------------------------------

def row_values(person_id: int, entry: status.CompetencyStatus, now) -> dict:
    values = {name: getattr(entry, name if name != "state" else "status") for name in _COLUMNS}
    return {"person_id": person_id, "competency_id": entry.competency_id, "updated_at": now, **values}


# Pairs judged and rewritten per statement group: a requirement for everyone in a large course touches tens of
# thousands of pairs, more than one (person, competency) IN-list should carry (PostgreSQL's parser recurses on it).
_PAIRS_PER_BATCH = 1000


def _rewrite(session, pairs, locked: bool = False) -> int:
    """Judge `pairs` again from their history and replace their rows; pairs that say nothing (not started,
    no sign-off, nothing open or drafted, not required) have no row. Large sets go in batches of whole people."""
    by_person: dict = {}
    for person_id, competency_id in pairs:
        by_person.setdefault(person_id, set()).add(competency_id)
    people = sorted(by_person)
    if not locked:
        _lock(session, people)
    written, batch, size = 0, [], 0
    for person_id in people:
        batch.append(person_id)
        size += len(by_person[person_id])
        if size >= _PAIRS_PER_BATCH:
            written += _rewrite_batch(session, {p: by_person[p] for p in batch})
            batch, size = [], 0
    if batch:
        written += _rewrite_batch(session, {p: by_person[p] for p in batch})
    return written


def _lock(session, people) -> None:
    """Lock the people whose rows are rewritten, in id order (see the module's note on concurrency). A
    transaction that already holds the locks takes them again at no cost."""
    if session.get_bind().dialect.name == "postgresql":
        people = sorted(people)
        session.execute(select(Person.id).where(among(Person.id, people, "postgresql")).order_by(Person.id)
                        .with_for_update())


# People per statement: PostgreSQL takes any number as one array; SQLite allows 32,766 bound parameters.
_PEOPLE_PER_LIST = 5000


def _chunks(items: list):
    for start in range(0, len(items), _PEOPLE_PER_LIST):
        yield items[start:start + _PEOPLE_PER_LIST]


def _apply_requirements(session, people) -> int:
    """Bring the requirement columns (required_by, requirement_id) of `people`'s rows up to date, set-based.

    A requirement, or a membership attribute it picks people by, changes no history: the state, sign-off and
    expiry of every pair stay what they are, only which pairs are required by when changes. So instead of judging
    every pair again, the new {(person, competency): (date, requirement)} comes from requirements.required_by()
    and is applied as the difference to the stored rows, keeping the table's invariant (a row exists only when it
    says something): a newly required pair without a row gets a plain 'not started' row; a pair no longer
    required loses its row if the requirement was all it said. Changes are grouped by competency and requirement,
    each person with their own date, so a requirement for everyone in a course is a few statements per competency
    whatever the course's size and however many due dates it makes.
    Returns the number of rows changed."""
    people = sorted(people)
    dialect = session.get_bind().dialect.name
    wanted = requirements.required_by(people)
    competency_ids = sorted({c for _, c in wanted})
    table = StoredStatus.__table__
    # Only what the difference needs: the stored requirement, and whether the row says anything else.
    plain = _says_nothing_else().label("plain")
    rows = {}
    for chunk in _chunks(people):
        relevant = table.c.required_by.is_not(None)
        if competency_ids:
            relevant = relevant | table.c.competency_id.in_(competency_ids)
        for row in session.execute(select(table.c.person_id, table.c.competency_id, table.c.required_by,
                                          table.c.requirement_id, plain)
                                   .where(among(table.c.person_id, chunk, dialect), relevant)).all():
            rows[(row.person_id, row.competency_id)] = row
    # {(competency, requirement or None): [(person, date or None)]} for each way to fix a stored row: the people of
    # one group share one statement, each with their own date (a requirement due N days after each technician's
    # assignment has as many dates as assignment days; one statement per date was thousands of statements).
    updates: dict = {}
    deletes: dict = {}
    inserts: dict = {}
    for key in set(wanted) | {k for k, row in rows.items() if row.required_by is not None}:
        person_id, competency_id = key
        required_by, requirement_id = wanted.get(key) or (None, None)
        row = rows.get(key)
        if row is None:
            if requirement_id is not None:
                inserts.setdefault((competency_id, requirement_id), []).append((person_id, required_by))
        elif (row.required_by, row.requirement_id) == (required_by, requirement_id):
            continue
        elif requirement_id is None and row.plain:
            deletes.setdefault(competency_id, []).append(person_id)
        else:
            updates.setdefault((competency_id, requirement_id), []).append((person_id, required_by))
    now = utcnow()
    for (competency_id, requirement_id), group in sorted(updates.items(), key=_order):
        for chunk in _chunks(sorted(group)):
            dates = _dates_of(chunk, dialect)
            statement = update(StoredStatus).where(StoredStatus.competency_id == competency_id)
            if isinstance(dates, tuple):  # one date for all of them
                statement = statement.where(among(StoredStatus.person_id, dates[0], dialect)).values(
                    required_by=dates[1])
            else:
                statement = statement.where(StoredStatus.person_id == dates.c.person_id).values(
                    required_by=dates.c.required_by)
            session.execute(statement.values(requirement_id=requirement_id, updated_at=now)
                            .execution_options(synchronize_session=False))
    for competency_id, group in sorted(deletes.items()):
        for chunk in _chunks(sorted(group)):
            session.execute(delete(StoredStatus).where(
                StoredStatus.competency_id == competency_id, among(StoredStatus.person_id, chunk, dialect))
                .execution_options(synchronize_session=False))
    blank = status.CompetencyStatus(0, status.NOT_STARTED)
    for (competency_id, requirement_id), group in sorted(inserts.items(), key=_order):
        # A plain 'not started' row per person, required: INSERT ... SELECT.
        values = row_values(0, replace(blank, competency_id=competency_id, requirement_id=requirement_id), now)
        names = [name for name in values if name not in ("person_id", "required_by")]
        constants = [literal(values[name], table.c[name].type) for name in names]
        for chunk in _chunks(sorted(group)):
            dates = _dates_of(chunk, dialect)
            if isinstance(dates, tuple):
                rows_from = select(Person.id, literal(dates[1], table.c.required_by.type), *constants).where(
                    among(Person.id, dates[0], dialect))
            else:
                rows_from = select(dates.c.person_id, dates.c.required_by, *constants)
            session.execute(insert(StoredStatus).from_select(["person_id", "required_by", *names], rows_from))
    return sum(map(len, updates.values())) + sum(map(len, deletes.values())) + sum(map(len, inserts.values()))


def _dates_of(pairs: list, dialect: str):
    """[(person, date)] as SQL: (people, date) when they share one date (an IN-list and a constant), else a table
    of (person_id, required_by) to join: on PostgreSQL two arrays unnested side by side (two parameters however
    many people), elsewhere a VALUES list (SQLite does not take column names in an alias, hence the CTE)."""
    people = [person_id for person_id, _ in pairs]
    dates = {required_by for _, required_by in pairs}
    if len(dates) == 1:
        return people, dates.pop()
    if dialect == "postgresql":
        return func.unnest(literal(people, ARRAY(BigInteger)), literal([d for _, d in pairs], ARRAY(Date))) \
            .table_valued("person_id", "required_by").render_derived()
    return values(column("person_id", BigInteger), column("required_by", Date), name="required_dates") \
        .data(pairs).cte()


def _order(item):
    """Groups in a fixed order (competency, requirement), clearing first: statements are repeatable."""
    (competency_id, requirement_id), _ = item
    return competency_id, requirement_id is not None, requirement_id or 0


def _says_nothing_else():
    """SQL: the stored row records nothing but its requirement (without it, the pair would have no row): every
    other column holds what a 'not started' status without history has."""
    blank = status.CompetencyStatus(0, status.NOT_STARTED)
    table = StoredStatus.__table__
    tests = [table.c.state == status.NOT_STARTED]
    for name in _COLUMNS[1:]:
        if name in ("required_by", "requirement_id"):
            continue
        value = getattr(blank, name)
        tests.append(table.c[name].is_(None) if value is None else table.c[name] == value)
    return and_(*tests)


def _rewrite_batch(session, by_person: dict) -> int:
    people = sorted(by_person)
    competency_ids = sorted({c for cs in by_person.values() for c in cs})
    judged = status.history(people, competency_ids, None)
    now = utcnow()
    rows = [row_values(p, judged[p][c], now) for p in people for c in sorted(by_person[p])
            if judged[p][c] != status.CompetencyStatus(c, status.NOT_STARTED)]
    if len(people) == 1 or len(competency_ids) == 1:
        # Every pair of the cross product is being rewritten: two short IN-lists instead of one per pair.
        where = StoredStatus.person_id.in_(people) & StoredStatus.competency_id.in_(competency_ids)
    else:
        where = tuple_(StoredStatus.person_id, StoredStatus.competency_id).in_(
            sorted((p, c) for p in people for c in by_person[p]))
    session.execute(delete(StoredStatus).where(where).execution_options(synchronize_session=False))
    if rows:
        session.execute(insert(StoredStatus), rows)
    return len(rows)


def rebuild(course_id: int | None = None, batch: int = 200) -> int:
    """Judge every (technician, competency) pair with any history or requirement again and replace the stored
    rows (all of them, or those of one course's members); requirements are first resolved again against their
    course's frameworks. Returns the number of rows written. The CLI's `status rebuild` and the migration that
    created the table call this."""
    _resolve_requirements(course_id)
    people_query = select(Membership.person_id).distinct()
    if course_id is not None:
        if db.session.get(Course, course_id) is None:
            raise ValueError(f"No course {course_id}.")
        people_query = people_query.where(Membership.course_id == course_id)
    people = set(db.session.scalars(people_query))
    people |= set(db.session.scalars(select(SignOff.person_id).distinct())) if course_id is None else set()
    people |= set(db.session.scalars(select(Evidence.person_id).distinct())) if course_id is None else set()
    written = 0
    people = sorted(people)
    for start in range(0, len(people), batch):
        chunk = people[start:start + batch]
        pairs = _pairs_with_history(chunk) | set(requirements.required_by(chunk))
        db.session.execute(delete(StoredStatus).where(StoredStatus.person_id.in_(chunk))
                           .execution_options(synchronize_session=False))
        if pairs:
            written += _rewrite(db.session, pairs)
    db.session.flush()
    return written


def _pairs_with_history(person_ids) -> set:
    """Every (person, competency) with a sign-off, a review request or linked evidence."""
    pairs = set(db.session.execute(select(SignOff.person_id, SignOff.competency_id)
                                   .where(SignOff.person_id.in_(person_ids)).distinct()).all())
    pairs |= set(db.session.execute(select(ReviewRequest.person_id, ReviewRequest.competency_id)
                                    .where(ReviewRequest.person_id.in_(person_ids)).distinct()).all())
    pairs |= set(db.session.execute(
        select(Evidence.person_id, EvidenceCompetency.competency_id)
        .join(EvidenceCompetency, EvidenceCompetency.evidence_id == Evidence.id)
        .where(Evidence.person_id.in_(person_ids)).distinct()).all())
    return pairs


def _resolve_requirements(course_id: int | None) -> None:
    """Resolve each active requirement's competency set again (a course may have changed its frameworks)."""
    query = select(Requirement).where(Requirement.active.is_(True))
    if course_id is not None:
        query = query.where(Requirement.course_id == course_id)
    for row in db.session.scalars(query):
        resolved = requirements.resolve(row.course, row.chosen_ids or [], row.area_ids or [],
                                             row.departments or [])
        if resolved != list(row.competency_ids or []):
            row.competency_ids = resolved
    db.session.flush()

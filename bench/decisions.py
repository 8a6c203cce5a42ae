"""Decision throughput: `qualify` through the engine, beside the raw-SQL ceiling of the same work.

The engine's decision is what the API does for `POST /cases/ID/qualify`, minus HTTP: a fresh session, the
actor loaded, `web.unit_of_work.decide` (the case loaded, row-locked on PostgreSQL, visibility, the
engine's state, authority and version checks, the transition, the HMAC-chained audit event, routing of
the panel step to HR, the supervisor) and one commit per decision, on open promotions of the generated
data in qualification review, each decided by the approver it is assigned to.

The ceiling is fixed: SELECT the case by id; UPDATE its state and version WHERE id and version match;
INSERT one audit row; COMMIT; through the driver, on the same database with the same settings. It runs on
copies of the same cases in scratch tables shaped like `cases` and `events` (same columns, indexes and
constraints, filled with the same rows), so the generated data stays valid; they are dropped afterwards.
Repetitions alternate ceiling and engine; the medians are reported.
"""
from __future__ import annotations

import datetime as dt
import json
import random

from sqlalchemy import MetaData, func, select, text

from bench.registry import BenchError, Context, NeedsFreshData, Result, benchmark, median, timed
from workflow.models import db, Case, CaseAssignee, Event, Person

TARGETS = {"sqlite": 0.25, "postgres": 0.60}    # of the raw-SQL ceiling (issue 4)
SCRATCH_CASES, SCRATCH_EVENTS = "bench_ceiling_cases", "bench_ceiling_events"
SCRATCH_EVENT_ROWS = 200_000                     # copied into the scratch events table, for a realistic index
QUICK_PER_REPETITION, PER_REPETITION = 50, 400   # decisions per repetition


def work_items(limit: int, seed: int) -> list[tuple[int, int, int]]:
    """(case id, approver id, version) of open promotions in qualification review, in a seeded order."""
    rows = db.session.execute(
        select(Case.id, func.min(CaseAssignee.person_id), Case.version)
        .join(CaseAssignee, CaseAssignee.case_id == Case.id)
        .where(Case.kind == "promotion", Case.state == "qualification_review", Case.closed.is_(False),
               CaseAssignee.duty == "decide")
        .group_by(Case.id, Case.version).order_by(Case.id)).all()
    items = [tuple(r) for r in rows]
    random.Random(seed).shuffle(items)
    return items[:limit]


def engine_decisions(items) -> int:
    """Each decision as a request would take it: a fresh session, the actor, decide(), one commit."""
    from web.unit_of_work import decide
    for case_id, actor_id, version in items:
        actor = db.session.get(Person, actor_id)
        decide(case_id, "qualify", actor, {"comment": "资格审核通过"}, version=version)
        db.session.remove()
    return len(items)


# --- the raw-SQL ceiling -----------------------------------------------------------------------------------

def _scratch_tables() -> tuple[MetaData, list]:
    """Tables shaped like `cases` and `events` (columns, keys, indexes, constraints), under scratch names;
    their foreign keys point at the real tables."""
    md = MetaData(naming_convention=db.metadata.naming_convention)
    for t in db.metadata.sorted_tables:
        t.to_metadata(md)
    scratch = []
    for source, name in ((Case.__table__, SCRATCH_CASES), (Event.__table__, SCRATCH_EVENTS)):
        t = source.to_metadata(md, name=name)
        for item in list(t.indexes) + list(t.constraints):
            if isinstance(item.name, str) and not item.name.startswith("bench_"):
                item.name = f"bench_{item.name}"
        scratch.append(t)
    return md, scratch


def make_scratch(items) -> tuple[MetaData, list]:
    md, scratch = _scratch_tables()
    md.drop_all(db.engine, tables=scratch, checkfirst=True)
    md.create_all(db.engine, tables=scratch)
    ids = [i for i, _, _ in items]
    cols = ", ".join(c.name for c in Case.__table__.columns)
    with db.engine.begin() as conn:
        for start in range(0, len(ids), 500):
            part = ", ".join(str(int(i)) for i in ids[start:start + 500])
            conn.execute(text(f"INSERT INTO {SCRATCH_CASES} ({cols}) SELECT {cols} FROM cases WHERE id IN ({part})"))
        ecols = ", ".join(c.name for c in Event.__table__.columns if c.name != "id")   # new ids for the copies
        conn.execute(text(f"INSERT INTO {SCRATCH_EVENTS} ({ecols}) SELECT {ecols} FROM events "
                          f"WHERE case_id NOT IN (SELECT id FROM {SCRATCH_CASES}) ORDER BY id "
                          f"LIMIT {SCRATCH_EVENT_ROWS}"))
        conn.execute(text(f"ANALYZE {SCRATCH_CASES}" if db.engine.dialect.name == "postgresql" else "ANALYZE"))
        if db.engine.dialect.name == "postgresql":
            conn.execute(text(f"ANALYZE {SCRATCH_EVENTS}"))
    return md, scratch


def drop_scratch(made: tuple[MetaData, list]) -> None:
    md, scratch = made
    md.drop_all(db.engine, tables=scratch, checkfirst=True)


def raw_decisions(items, postgres: bool) -> int:
    """The fixed ceiling: SELECT, versioned UPDATE, INSERT of one audit row, COMMIT, per decision."""
    ph = "%s" if postgres else "?"
    conn = db.engine.raw_connection()
    try:
        cur = conn.cursor()
        select_case = f"SELECT * FROM {SCRATCH_CASES} WHERE id = {ph}"
        cur.execute(select_case, (items[0][0],))
        version_at = [d[0] for d in cur.description].index("version")
        cur.fetchall()
        conn.rollback()
        update = f"UPDATE {SCRATCH_CASES} SET state = {ph}, version = {ph} WHERE id = {ph} AND version = {ph}"
        insert = (f"INSERT INTO {SCRATCH_EVENTS} (chain, seq, case_id, action, from_state, to_state, actor, "
                  f"actor_id, role, unit, at, comment, data, prev_mac, mac) VALUES "
                  f"({', '.join([ph] * 15)})")
        data = json.dumps({"decision": True, "step": "qualification_review"})
        for case_id, actor_id, _ in items:
            cur.execute(select_case, (case_id,))
            version = cur.fetchone()[version_at]
            cur.execute(update, ("panel_scoring", version + 1, case_id, version))
            if cur.rowcount != 1:
                raise BenchError(f"the ceiling's update of case {case_id} matched {cur.rowcount} rows")
            at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
            cur.execute(insert, (f"case:{case_id}", version + 1, case_id, "qualify", "qualification_review",
                                 "panel_scoring", "approver", actor_id, "approver", "T", at if postgres else
                                 at.isoformat(sep=" "), "资格审核通过", data, "0" * 64, "f" * 64))
            conn.commit()
        cur.close()
    finally:
        conn.close()
    return len(items)


@benchmark("decisions", "qualify through the engine per second, and the raw-SQL ceiling of the same work")
def decisions(ctx: Context) -> list[Result]:
    per_rep = QUICK_PER_REPETITION if ctx.quick else PER_REPETITION
    reps = ctx.repetitions
    postgres = ctx.db == "postgres"
    with ctx.app.app_context():
        items = work_items(per_rep * reps, ctx.seed)
        if len(items) < reps * min(per_rep, 20):
            raise NeedsFreshData(f"only {len(items)} promotions wait in qualification review")
        per_rep = min(per_rep, len(items) // reps)
        items = items[:per_rep * reps]
        made = make_scratch(items)
        raw, eng = [], []
        try:
            for r in range(reps):
                chunk = items[r * per_rep:(r + 1) * per_rep]
                raw.append(timed(lambda: raw_decisions(chunk, postgres)))
                eng.append(timed(lambda: engine_decisions(chunk)))
                ctx.say(f"  decisions rep {r + 1}/{reps}: engine {eng[-1]:.0f}/s, raw SQL {raw[-1]:.0f}/s "
                        f"({eng[-1] / raw[-1]:.0%})")
        finally:
            db.session.remove()
            drop_scratch(made)
        moved = db.session.scalar(select(func.count()).select_from(Case).where(
            Case.id.in_([i for i, _, _ in items]), Case.state == "panel_scoring"))
        if moved != len(items):
            raise BenchError(f"{len(items) - moved} decided cases are not in panel_scoring")
    spread = f"engine {min(eng):.0f}..{max(eng):.0f}/s, raw {min(raw):.0f}..{max(raw):.0f}/s over {reps}×{per_rep}"
    return [Result("decisions.qualify", median(eng), "decisions/s", target=TARGETS[ctx.db], ceiling=median(raw),
                   note=spread),
            Result("decisions.raw_sql", median(raw), "decisions/s")]

"""What must hold of the stored cases however decisions raced, however many ticks ran and wherever a process
died: `check()` answers the problems found, an empty list when everything holds.

- every audit chain verifies (workflow/audit.verify): seqs 1..n with no gap, MACs, heads, states;
- every case's events are a path of its kind's machine ending in its state, and its version is the seq of
  its last event, which is also the number of its events;
- a case is closed exactly when its state is terminal, and a closed case waits on nobody;
- no decision was applied twice: within one stay in a state nobody takes the same decision twice, and a
  promotion's stored scores are exactly the score events (one per scorer and component);
- every grade change a case made has exactly one grade-history row and the other way round (an effective
  promotion has exactly one, a promotion that is not effective none), and a person with grade history
  holds the grade their last row gave them (no change half applied).

It reads in batches of cases so that it runs at full scale; the CLI (`check-invariants`) and bench/ call it.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable

from sqlalchemy import func, select

from . import audit
from .machines import rulebook
from .models import db, Case, CaseAssignee, CaseScore, Event, GradeHistory, Person

# Decisions a person may rightly take more than once in one stay: each uphold answers its own objection.
REPEATABLE = frozenset({"uphold"})
SCORE_COMPONENTS = {"score": "panel", "supervisor_score": "supervisor"}


def check(batch: int = 500, progress: Callable[[str, int, int], None] | None = None) -> list[str]:
    """Every problem found, as a line a person can read. `progress(stage, done, total)` is called after
    each batch of audit chains ("audit"), cases ("cases") and people ("people")."""
    report = audit.verify(batch=batch, progress=(lambda done, total: progress("audit", done, total))
                          if progress else None)
    problems = list(report.problems)
    case_ids = db.session.scalars(select(Case.id).order_by(Case.id)).all()
    for start in range(0, len(case_ids), batch):
        problems += _check_cases(case_ids[start:start + batch])
        if progress:
            progress("cases", min(start + batch, len(case_ids)), len(case_ids))
    problems += _check_people(batch, progress)
    return problems


def _check_cases(ids: list[int]) -> list[str]:
    problems: list[str] = []
    cases = db.session.execute(select(Case.id, Case.kind, Case.state, Case.closed, Case.version)
                               .where(Case.id.in_(ids)).order_by(Case.id)).all()
    events: dict[int, list] = defaultdict(list)
    for ev in db.session.execute(select(Event.case_id, Event.seq, Event.action, Event.from_state,
                                        Event.to_state, Event.actor_id, Event.data)
                                 .where(Event.case_id.in_(ids)).order_by(Event.case_id, Event.seq)):
        events[ev.case_id].append(ev)
    scores: dict[int, Counter] = defaultdict(Counter)
    for s in db.session.execute(select(CaseScore.case_id, CaseScore.scorer_id, CaseScore.component)
                                .where(CaseScore.case_id.in_(ids))):
        scores[s.case_id][(s.scorer_id, s.component)] += 1
    history = dict(db.session.execute(select(GradeHistory.case_id, func.count()).where(
        GradeHistory.case_id.in_(ids)).group_by(GradeHistory.case_id)).all())
    waiting = dict(db.session.execute(select(CaseAssignee.case_id, func.count()).where(
        CaseAssignee.case_id.in_(ids)).group_by(CaseAssignee.case_id)).all())

    for case in cases:
        rb = rulebook(case.kind)
        evs = events[case.id]
        where = f"case {case.id} ({case.kind})"
        problems += [f"{where}: {p}" for p in rb.path_problems(evs, case.state)]
        if [e.seq for e in evs] != list(range(1, len(evs) + 1)):
            problems.append(f"{where}: event seqs {[e.seq for e in evs]} are not 1..{len(evs)}")
        if not evs or case.version != evs[-1].seq:
            problems.append(f"{where}: version {case.version} is not the seq of its last event "
                            f"({evs[-1].seq if evs else 'none'})")
        if case.closed != (case.state in rb.terminal):
            problems.append(f"{where}: closed={case.closed} but the state {case.state} is "
                            f"{'' if case.state in rb.terminal else 'not '}terminal")
        if case.closed and waiting.get(case.id):
            problems.append(f"{where}: closed, yet {waiting[case.id]} assignee(s) still wait on it")
        problems += [f"{where}: {p}" for p in _decided_twice(rb, evs)]
        if case.kind == "promotion":
            seen = Counter((e.actor_id, SCORE_COMPONENTS[e.action]) for e in evs
                           if e.action in SCORE_COMPONENTS)
            if seen != scores[case.id]:
                problems.append(f"{where}: score events {sorted(seen.items())} do not match the stored "
                                f"scores {sorted(scores[case.id].items())}")
            want = 1 if case.state == "effective" else 0
            if history.get(case.id, 0) != want:
                problems.append(f"{where}: {case.state} with {history.get(case.id, 0)} grade-history row(s), "
                                f"not {want}")
        changes = sum(1 for e in evs if isinstance(e.data, dict) and "grade" in e.data)
        if history.get(case.id, 0) != changes:
            problems.append(f"{where}: {changes} grade change(s) in its events but {history.get(case.id, 0)} "
                            f"grade-history row(s)")
    return problems


def _decided_twice(rb, events) -> list[str]:
    """Within one stay in a state (from entering it to leaving it), the same person taking the same
    decision twice: a signature, a score or a vote applied twice."""
    problems, taken = [], set()
    for ev in events:
        if ev.action in rb.decisions and ev.action not in REPEATABLE and ev.actor_id is not None:
            key = (ev.actor_id, ev.action)
            if key in taken:
                problems.append(f"#{ev.seq} {ev.action} by person {ev.actor_id} a second time in "
                                f"{ev.from_state}")
            taken.add(key)
        if ev.from_state != ev.to_state:
            taken = set()
    return problems


def _check_people(batch: int, progress) -> list[str]:
    """A person with grade history holds the grade of their last row (by the order rows were written)."""
    problems = []
    ids = db.session.scalars(select(GradeHistory.person_id).distinct().order_by(GradeHistory.person_id)).all()
    for start in range(0, len(ids), batch):
        part = ids[start:start + batch]
        last = {}
        for row in db.session.execute(select(GradeHistory.person_id, GradeHistory.to_grade)
                                      .where(GradeHistory.person_id.in_(part)).order_by(GradeHistory.id)):
            last[row.person_id] = row.to_grade
        for p in db.session.execute(select(Person.id, Person.username, Person.level, Person.tier)
                                    .where(Person.id.in_(part))):
            grade = f"{p.level}-{p.tier}" if p.level else None
            if grade != last[p.id]:
                problems.append(f"person {p.username}: holds {grade}, but the last grade-history row gave "
                                f"{last[p.id]}")
        if progress:
            progress("people", min(start + batch, len(ids)), len(ids))
    return problems

"""Decisions racing on one case, from threads with app contexts (and so database sessions) of their own.

Each racer waits at a start barrier, then at a second rendezvous just before `engine.fire`, so that where
reading takes no lock (SQLite) all of them have read the same version of the case before any of them
writes. Where reading locks the row (PostgreSQL's SELECT ... FOR UPDATE), the later racers wait on the
lock instead; the rendezvous then gives up after a short while and lets the first one go on.
"""
from __future__ import annotations

import os
import threading
from collections import Counter
from typing import Any, Callable

import pytest
from sqlalchemy import select, text

from bench import race as race_bench
from web.unit_of_work import decide
from workflow import audit, engine, invariants, rules
from workflow.errors import Conflict
from workflow.machines import rulebook
from workflow.models import db, Case, Event, Person

ON_POSTGRES = bool(os.environ.get("TEST_DATABASE_URL"))
RENDEZVOUS_SECONDS = 0.5 if ON_POSTGRES else 10.0
JOIN_SECONDS = 60


@pytest.fixture
def race(app, monkeypatch):
    """race(job, job, ...) runs each job in its own thread and app context, all released together, and
    returns [("ok", value) | ("error", exception)] in the jobs' order."""

    def run(*jobs: Callable[[], Any]) -> list[tuple[str, Any]]:
        db.session.commit()        # the test's own session holds nothing open while the racers run
        start = threading.Barrier(len(jobs), timeout=JOIN_SECONDS)
        loaded = threading.Barrier(len(jobs), timeout=RENDEZVOUS_SECONDS)
        real_fire = engine.fire
        waited = threading.local()

        def fire_together(*args, **kwargs):
            if not getattr(waited, "done", False):
                waited.done = True
                try:
                    loaded.wait()
                except threading.BrokenBarrierError:
                    pass           # someone holds the row lock: go on without the others
            return real_fire(*args, **kwargs)

        monkeypatch.setattr(engine, "fire", fire_together)
        results: list[tuple[str, Any]] = [("error", TimeoutError("did not finish"))] * len(jobs)

        def worker(i: int, job: Callable[[], Any]) -> None:
            try:
                with app.app_context():
                    start.wait()
                    results[i] = ("ok", job())
            except Exception as exc:   # reported to the test, which decides what was expected
                results[i] = ("error", exc)

        threads = [threading.Thread(target=worker, args=(i, job), name=f"racer-{i}") for i, job in enumerate(jobs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(JOIN_SECONDS)
        assert not any(t.is_alive() for t in threads), "a racer hung"
        monkeypatch.setattr(engine, "fire", real_fire)
        db.session.expire_all()
        return results

    return run


def _decide_as(username: str, case_id: int, action: str, data: dict | None = None, version: int | None = None):
    def job():
        actor = db.session.scalar(select(Person).where(Person.username == username))
        case = decide(case_id, action, actor, dict(data or {}), version)
        return case.state
    return job


def _events(case_id: int) -> list[Event]:
    return db.session.scalars(select(Event).where(Event.case_id == case_id).order_by(Event.seq)).all()


def _assert_chain_verifies() -> None:
    report = audit.verify()
    assert report.ok, report.problems


@pytest.fixture
def two_approvers(bank, make_person):
    """A second approver at B1, so that the qualification of a `senior` case has two assignees (或签)."""
    make_person("appr_b1b", bank["units"]["B1"], roles=["approver@B1"])
    db.session.commit()
    return bank


def _file(api) -> dict:
    resp = api("emp").post("/cases", {"kind": "promotion", "target_grade": "senior", "statement": "请审批"})
    assert resp.status_code == 201, resp.get_json()
    case = resp.get_json()
    assert sorted(case["assignees"]) == ["appr_b1", "appr_b1b"]
    return case


def test_two_approvers_qualify_at_once_one_wins(two_approvers, api, race):
    case = _file(api)
    cid = case["id"]

    results = race(_decide_as("appr_b1", cid, "qualify"), _decide_as("appr_b1b", cid, "qualify"))

    outcomes = Counter(kind for kind, _ in results)
    assert outcomes == {"ok": 1, "error": 1}, results
    assert [v for k, v in results if k == "ok"] == ["panel_scoring"]
    loser = next(v for k, v in results if k == "error")
    assert isinstance(loser, Conflict) and loser.status == 409, repr(loser)
    stored = db.session.get(Case, cid)
    assert stored.state == "panel_scoring"
    events = _events(cid)
    assert [e.action for e in events] == ["create", "qualify"]
    assert stored.version == events[-1].seq == 2
    _assert_chain_verifies()


def test_two_approvers_qualify_at_once_over_http(two_approvers, api, race, app):
    case = _file(api)
    cid = case["id"]
    headers = {name: api(name).headers for name in ("appr_b1", "appr_b1b")}

    def post_as(username):
        def job():
            resp = app.test_client().post(f"/api/v1/cases/{cid}/qualify", json={"version": case["version"]},
                                          headers=headers[username])
            return resp.status_code, resp.get_json()
        return job

    results = race(post_as("appr_b1"), post_as("appr_b1b"))

    assert all(kind == "ok" for kind, _ in results), results
    statuses = sorted(status for _, (status, _) in results)
    assert statuses == [200, 409], results
    winner = next(body for _, (status, body) in results if status == 200)
    loser = next(body for _, (status, body) in results if status == 409)
    assert winner["state"] == "panel_scoring"
    assert loser["error"]["code"] == "conflict"
    after = api("admin").get(f"/cases/{cid}").get_json()
    assert [e["action"] for e in after["events"]] == ["create", "qualify"]
    assert api("admin").get("/audit/verify").get_json() == {"ok": True, "events": 2}


def test_two_hr_officers_naming_the_panel_at_once_one_wins(bank, api, race, make_person):
    # Each replaces the panel: the loser's DELETE of the members finds them gone (SQLite), and its
    # UPDATE of the case finds the version moved on: 409, with no warning about the missing rows.
    make_person("hr_b1b", bank["units"]["B1"], roles=["hr@B1"])
    db.session.commit()
    resp = api("emp").post("/cases", {"kind": "promotion", "target_grade": "senior", "statement": "请审批"})
    cid = resp.get_json()["id"]
    assert api("appr_b1").post(f"/cases/{cid}/qualify").status_code == 200
    assert api("hr_b1").post(f"/cases/{cid}/assign_panel", {"members": ["panel1", "panel2", "panel3"]}) \
        .status_code == 200
    version = db.session.get(Case, cid).version

    results = race(
        _decide_as("hr_b1", cid, "assign_panel", {"members": ["panel2", "panel3", "panel4"]}, version),
        _decide_as("hr_b1b", cid, "assign_panel", {"members": ["panel1", "panel3", "panel4"]}, version))

    assert sorted(kind for kind, _ in results) == ["error", "ok"], results
    loser = next(v for k, v in results if k == "error")
    assert isinstance(loser, Conflict), repr(loser)
    assert [e.action for e in _events(cid)].count("assign_panel") == 2
    assert invariants.check() == []


@pytest.fixture
def panel_race(bank, api, race):
    """A case in panel scoring whose supervisor has scored; its three panel members then score at once.
    Answers (case id, the racers' results)."""
    resp = api("emp").post("/cases", {"kind": "promotion", "target_grade": "senior", "statement": "请审批"})
    assert resp.status_code == 201, resp.get_json()
    cid = resp.get_json()["id"]
    assert api("appr_b1").post(f"/cases/{cid}/qualify").status_code == 200
    resp = api("hr_b1").post(f"/cases/{cid}/assign_panel", {"members": ["panel1", "panel2", "panel3"]})
    assert resp.status_code == 200, resp.get_json()
    resp = api("sup_t1").post(f"/cases/{cid}/supervisor_score", {"score": 88})
    assert resp.status_code == 200 and resp.get_json()["state"] == "panel_scoring", resp.get_json()
    results = race(*(_decide_as(member, cid, "score", {"score": score})
                     for member, score in [("panel1", 80), ("panel2", 90), ("panel3", 70)]))
    return cid, results


def test_panel_members_scoring_at_once_never_block_each_other(panel_race):
    cid, results = panel_race
    assert [kind for kind, _ in results] == ["ok", "ok", "ok"], results
    stored = db.session.get(Case, cid)
    assert sorted(s.value for s in stored.scores if s.component == "panel") == [70, 80, 90]
    actions = Counter(e.action for e in _events(cid))
    assert actions["score"] == 3, actions
    assert stored.version == _events(cid)[-1].seq
    _assert_chain_verifies()


def test_the_last_of_racing_panel_scores_moves_the_case_on_once(panel_race):
    cid, results = panel_race
    stored = db.session.get(Case, cid)
    assert stored.state == "hr_approval"
    actions = Counter(e.action for e in _events(cid))
    assert actions["scoring_complete"] == 1, actions
    assert stored.composite == round((30 * 88 + 40 * 80 + 30 * 85) / 100, 2)
    _assert_chain_verifies()


# --- random decisions at scale, and the invariants --------------------------------------------------------

RANDOM_ATTEMPTS = 48              # bounded here; bench/race.py runs 10,000
PROCESS_ATTEMPTS = 32


def _summary(tally) -> str:
    return (f"{tally.attempts} attempts ({tally.ticks} ticks): {tally.ok} succeeded, refused "
            f"{dict(sorted(tally.codes.items()))}")


def _assert_raced_cleanly(tally, attempts: int) -> None:
    print(_summary(tally))
    assert tally.attempts == attempts
    assert tally.unexpected == []
    assert tally.ok > 0 and tally.codes["forbidden"] > 0, _summary(tally)
    problems = invariants.check() + race_bench.acknowledged_problems(tally.acknowledged, exact=True)
    assert problems == []


def test_random_legal_and_illegal_decisions_from_threads_keep_every_invariant(app):
    world = race_bench.seed(reset=False)
    tally = race_bench.run_threads(app, world, threads=4, attempts=RANDOM_ATTEMPTS, seed=7)
    _assert_raced_cleanly(tally, RANDOM_ATTEMPTS)


@pytest.mark.skipif(not ON_POSTGRES, reason="processes race on PostgreSQL (SQLite is one file per process)")
def test_random_decisions_from_processes_keep_every_invariant(app):
    world = race_bench.seed(reset=False)
    tally = race_bench.run_processes(os.environ["TEST_DATABASE_URL"], world, processes=2, threads=2,
                                     attempts=PROCESS_ATTEMPTS, seed=11)
    _assert_raced_cleanly(tally, PROCESS_ATTEMPTS)


def test_two_filings_for_one_person_at_once_one_is_a_conflict(bank, api, app, race, monkeypatch):
    headers = {name: api(name).headers for name in ("emp", "hr_b1")}
    # Both filings meet after their check for an open case and before writing theirs: the unique index of
    # open cases per person and kind lets one through, and the other is answered 409, never 500.
    checked = threading.Barrier(2, timeout=RENDEZVOUS_SECONDS)
    real_evaluate = rules.evaluate

    def evaluate_together(*args, **kwargs):
        try:
            checked.wait()
        except threading.BrokenBarrierError:
            pass
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(rules, "evaluate", evaluate_together)

    def file_as(username):
        def job():
            body = {"kind": "promotion", "target_grade": "senior", "statement": "请审批"}
            if username != "emp":
                body["employee"] = "emp"
            resp = app.test_client().post("/api/v1/cases", json=body, headers=headers[username])
            return resp.status_code, resp.get_json()
        return job

    results = race(file_as("emp"), file_as("hr_b1"))
    assert sorted(status for _, (status, _) in results) == [201, 409], results
    loser = next(body for _, (status, body) in results if status == 409)
    assert loser["error"]["code"] == "conflict"
    assert db.session.scalar(select(db.func.count()).select_from(Case)) == 1
    assert invariants.check() == []


# --- the checker finds what it is for -------------------------------------------------------------------

def _tamper(sql: str, **params) -> list[str]:
    db.session.execute(text(sql), params)
    db.session.commit()
    db.session.expire_all()
    return invariants.check()


def test_the_checker_finds_decisions_applied_twice_and_changes_half_applied(walk):
    case = walk.file()
    walk.to_hr(case)
    walk.act(case, "approve", "hr_b1")
    assert case.state == "effective" and invariants.check() == []
    events = _events(case.id)

    score = next(e for e in events if e.action == "score")
    again = type("Ev", (), {"seq": len(events) + 1, "action": "score", "from_state": "panel_scoring",
                            "to_state": "panel_scoring", "actor_id": score.actor_id, "data": {}})
    assert invariants._decided_twice(rulebook("promotion"), [*events[:events.index(score) + 1], again]) == [
        f"#{len(events) + 1} score by person {score.actor_id} a second time in panel_scoring"]

    problems = _tamper("INSERT INTO case_scores (case_id, scorer_id, component, value, at) "
                       "SELECT case_id, scorer_id, 'supervisor', value, at FROM case_scores "
                       "WHERE case_id = :c AND scorer_id = :s", c=case.id, s=score.actor_id)
    assert any("do not match the stored scores" in p for p in problems), problems

    problems = _tamper("INSERT INTO grade_history (person_id, from_grade, to_grade, effective_on, case_id, "
                       "source, recorded_at) VALUES (:p, 'senior-1', 'senior-2', '2026-03-02', :c, 'case', "
                       "'2026-03-02 00:00:00')", p=case.employee_id, c=case.id)
    assert f"case {case.id} (promotion): effective with 2 grade-history row(s), not 1" in problems
    assert "person emp: holds senior-1, but the last grade-history row gave senior-2" in problems


def test_check_invariants_on_the_command_line(walk, app):
    case = walk.file()
    result = app.test_cli_runner().invoke(args=["check-invariants"])
    assert result.exit_code == 0, result.output
    assert "invariants hold: 1 cases checked" in result.stdout and "cases: checked 1/1" in result.stderr
    db.session.execute(text("UPDATE cases SET state = 'returned' WHERE id = :c"), {"c": case.id})
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["check-invariants"])
    assert result.exit_code == 1
    assert f"case {case.id} (promotion): the case is returned but its events end in qualification_review" \
        in result.stderr

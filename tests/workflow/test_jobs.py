"""Jobs: enqueued, claimed by one worker, run in chunks through the engine, resumed after a crash."""
import datetime as dt

import pytest
from sqlalchemy import func, select, update

from workflow import audit, batch, clock, engine, jobs
from workflow.errors import Forbidden, Invalid
from workflow.models import db, Case, Event, OrgUnit, Person, RoleAssignment
from workflow.models.jobs import Job
from tests.workflow.test_review import mixed  # noqa: F401  (the review's own mixed unit, as a fixture)

UNITS = "code,name,level,parent_code\nHQ,总行,hq,\nR1,华东区域,region,HQ\nB1,杭州分行,branch,R1\n"


def people_csv(n, start=0, status="active", roles=""):
    rows = [f"u{i:05d},员工{i},B1,manager-1,2024-01-01,2020-01-01,bachelor,{status},{roles}"
            for i in range(start, start + n)]
    return ("username,name,unit_code,grade,grade_since,hired_on,education,status,roles\n"
            + "\n".join(rows) + "\n").encode()


def person(username):
    return db.session.scalar(select(Person).where(Person.username == username))


def count(model, *where):
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def enqueue_import(units=UNITS.encode(), people=None, actor=None):
    files = {"units": ("units.csv", units)} if units else {}
    if people is not None:
        files["people"] = ("people.csv", people)
    job = jobs.enqueue("import_people", {}, actor, files=files)
    db.session.commit()
    return job


class Crash(BaseException):
    """A worker dying mid-job: not an error the job records, nothing after it runs."""


def crash_after(monkeypatch, commits):
    """The worker dies right after its `commits`-th chunk commit."""
    seen = []
    real = jobs.Chunks.commit

    def commit(self, *args, **kwargs):
        real(self, *args, **kwargs)
        seen.append(1)
        if len(seen) == commits:
            raise Crash()
    monkeypatch.setattr(jobs.Chunks, "commit", commit)
    return lambda: monkeypatch.setattr(jobs.Chunks, "commit", real)


def expire_lease(job_id):
    db.session.execute(update(Job).where(Job.id == job_id)
                       .values(heartbeat_at=clock.now() - jobs.LEASE - dt.timedelta(seconds=1)))
    db.session.commit()


class TestQueue:
    def test_a_job_goes_to_one_worker_only(self, app):
        job = enqueue_import(people=people_csv(2))
        first = jobs.claim("w1")
        assert (first.id, first.status, first.claimed_by, first.attempts) == (job.id, "running", "w1", 1)
        assert jobs.claim("w2") is None

    def test_a_silent_worker_loses_its_job_after_the_lease(self, app):
        job = enqueue_import(people=people_csv(2))
        jobs.claim("w1")
        assert jobs.claim("w2") is None
        expire_lease(job.id)
        again = jobs.claim("w2")
        assert (again.claimed_by, again.attempts) == ("w2", 2)
        with pytest.raises(jobs.LostClaim):
            jobs.Chunks(again, "w1").begin()
        db.session.rollback()

    def test_bad_parameters_are_refused_and_nothing_is_stored(self, app, bank):
        with pytest.raises(Invalid):
            jobs.enqueue("export_everything", {}, None)
        with pytest.raises(Invalid):
            jobs.enqueue("import_people", {}, None)                     # no file
        with pytest.raises(Forbidden):
            jobs.enqueue("import_people", {}, bank["hr_b1"], files={"people": ("p.csv", b"x")})
        for params in ({"action": "delete", "cases": [1]}, {"action": "approve", "cases": []},
                       {"action": "approve", "cases": [1, 1]}, {"action": "approve", "cases": ["1"]},
                       {"action": "approve", "cases": [1], "versions": {"2": 1}},
                       {"action": "approve", "cases": [1], "comment": 5}, ["approve"]):
            with pytest.raises(Invalid):
                jobs.enqueue("bulk_decision", params, bank["hr_b1"])
        with pytest.raises(Forbidden):
            jobs.enqueue("bulk_decision", {"action": "approve", "cases": [1]}, None)
        db.session.rollback()
        assert count(Job) == 0


class TestImportJob:
    def test_an_import_runs_in_chunks_and_records_its_progress(self, app, monkeypatch):
        monkeypatch.setattr(batch, "IMPORT_CHUNK", 4)
        job = enqueue_import(people=people_csv(10, roles="panel@B1"))
        seen = []
        jobs.run_queued("w1", progress=lambda j: seen.append((j.status, j.done, j.total)))
        db.session.expire_all()
        job = db.session.get(Job, job.id)
        assert (job.status, job.done, job.total, job.error) == ("done", 13, 13, None)
        assert job.result["counts"]["people_created"] == 10 and job.result["counts"]["units_created"] == 3
        # units in one chunk, then people four by four, each committed with its progress
        assert [d for s, d, _ in seen if s == "running"] == [0, 3, 7, 11, 13]
        assert person("u00007").role_strings() == ["panel@B1"]
        assert count(Event, Event.action == "roles_change") == 10
        assert audit.verify().ok

    def test_a_refused_file_fails_the_job_naming_row_and_column_and_changes_nothing(self, app):
        bad = people_csv(5).replace(b"u00003,\xe5\x91\x98\xe5\xb7\xa53,B1,manager-1",
                                    b"u00003,\xe5\x91\x98\xe5\xb7\xa53,B1,captain-1")
        job_id = enqueue_import(people=bad).id
        jobs.run_queued("w1")
        db.session.expire_all()
        job = db.session.get(Job, job_id)
        assert job.status == "failed"
        assert "people.csv, line 5, column 'grade'" in job.error
        assert count(Person) == 0 and count(OrgUnit) == 0

    def test_a_crashed_import_resumes_where_it_stopped(self, app, monkeypatch):
        monkeypatch.setattr(batch, "IMPORT_CHUNK", 3)
        job = enqueue_import(people=people_csv(8, roles="panel@B1"))
        restore = crash_after(monkeypatch, 3)            # total set, units, first chunk of people
        with pytest.raises(Crash):
            jobs.run_queued("w1")
        db.session.rollback()
        restore()
        db.session.expire_all()
        stopped = db.session.get(Job, job.id)
        assert (stopped.status, stopped.done) == ("running", 6)
        assert count(Person) == 3
        assert jobs.run_queued("w2") == []               # still within the lease of the dead worker
        expire_lease(job.id)
        jobs.run_queued("w2")
        db.session.expire_all()
        job = db.session.get(Job, job.id)
        assert (job.status, job.done, job.attempts) == ("done", 11, 2)
        assert (job.result["counts"]["people_created"], job.result["counts"]["units_created"]) == (8, 3)
        assert count(Person) == 8 and count(RoleAssignment) == 8
        assert count(Event, Event.action == "roles_change") == 8
        assert audit.verify().ok

    def test_run_now_runs_the_job_in_this_process(self, app):
        job = jobs.run_now(enqueue_import(people=people_csv(3)))
        assert (job.status, job.result["counts"]["people_created"]) == ("done", 3)


@pytest.fixture
def qualifying(bank, walk):
    """Four promotions: two waiting for appr_b1's qualification, one for appr_t1's, one far away."""
    emp = walk.file("emp")                                  # senior: qualified at the branch (appr_b1)
    far = walk.file("far", target="manager-2")              # another region
    low = walk.file("emp2", target="manager-2")             # qualified at the team (appr_t1)
    p = Person(username="emp3", name="Emp3", unit=bank["units"]["T2"], level="manager", tier=3,
               grade_since=dt.date(2024, 1, 1), hired_on=dt.date(2020, 1, 1), education="bachelor",
               status="active")
    db.session.add(p)
    db.session.commit()
    other = engine.create_promotion(bank["hr_b1"], p, "senior", "申请", exceptional=True)
    db.session.commit()
    return {"emp": emp.id, "far": far.id, "low": low.id, "other": other.id}


def bulk(actor, ids, action="qualify", **extra):
    job = jobs.enqueue("bulk_decision", {"action": action, "cases": ids, **extra}, actor)
    db.session.commit()
    jobs.run_queued("w1")
    db.session.expire_all()
    return db.session.get(Job, job.id)


class TestBulkDecision:
    def test_each_case_is_decided_on_its_own_with_the_engines_checks(self, qualifying, bank):
        q = qualifying
        job = bulk(bank["appr_b1"], [q["emp"], q["low"], q["far"], 999999, q["other"]], comment="批量通过")
        assert job.status == "done" and (job.result["ok"], job.result["refused"]) == (1, 4)
        items = {i["case"]: i for i in job.result["items"]}
        assert items[q["emp"]]["ok"] and items[q["emp"]]["state"] == "panel_scoring"
        assert [items[i]["status"] for i in (q["low"], q["far"], 999999)] == [403, 404, 404]
        assert items[q["other"]]["status"] == 403           # exceptional: qualified one level higher
        ev = db.session.scalar(select(Event).where(Event.case_id == q["emp"], Event.action == "qualify"))
        assert (ev.actor, ev.comment, ev.role, ev.unit) == ("appr_b1", "批量通过", "approver", "B1")
        for key in ("low", "far", "other"):
            assert db.session.get(Case, q[key]).state == "qualification_review"
        assert audit.verify().ok

    def test_a_stale_version_or_a_decided_case_is_refused_with_409(self, qualifying, bank):
        q = qualifying
        job = bulk(bank["appr_t1"], [q["low"]], versions={str(q["low"]): 0})
        assert job.result["items"][0]["status"] == 409 and "version" in job.result["items"][0]["reason"]
        assert bulk(bank["appr_t1"], [q["low"]], versions={str(q["low"]): 1}).result["ok"] == 1
        again = bulk(bank["appr_t1"], [q["low"]])
        assert (again.result["items"][0]["status"], again.result["items"][0]["code"]) == (409, "conflict")
        assert count(Event, Event.case_id == q["low"], Event.action == "qualify") == 1

    def test_a_chunk_lands_whole_or_not_at_all_and_the_job_resumes(self, qualifying, bank, monkeypatch):
        monkeypatch.setattr(batch, "DECISION_CHUNK", 2)
        ids = [qualifying[k] for k in ("low", "far", "emp", "other")]
        job = jobs.enqueue("bulk_decision", {"action": "qualify", "cases": ids}, bank["appr_b1"])
        db.session.commit()
        real, calls = engine.fire, []

        def dying(case, *args, **kwargs):
            calls.append(case.id)
            if len(calls) == 3:        # the second chunk: emp is qualified, then the worker dies
                raise Crash()
            return real(case, *args, **kwargs)
        monkeypatch.setattr(engine, "fire", dying)
        with pytest.raises(Crash):
            jobs.run_queued("w1")
        db.session.rollback()
        monkeypatch.setattr(engine, "fire", real)
        db.session.expire_all()
        assert (db.session.get(Job, job.id).done, len(db.session.get(Job, job.id).result["items"])) == (2, 2)
        expire_lease(job.id)
        jobs.run_queued("w2")
        db.session.expire_all()
        job = db.session.get(Job, job.id)
        assert job.status == "done" and [i["case"] for i in job.result["items"]] == ids
        assert job.result["ok"] == 1 and db.session.get(Case, qualifying["emp"]).state == "panel_scoring"
        assert count(Event, Event.action == "qualify") == 1
        assert audit.verify().ok

    def test_a_refused_case_leaves_the_others_of_its_chunk_decided(self, qualifying, bank, walk):
        # on SQLite the savepoint of a refused case must not end the chunk's transaction
        job = bulk(bank["appr_b1"], [qualifying["far"], qualifying["emp"], qualifying["other"]])
        assert [i["ok"] for i in job.result["items"]] == [False, True, False]
        db.session.rollback()
        assert db.session.get(Case, qualifying["emp"]).state == "panel_scoring"


class TestAnnualReviewJob:
    def test_the_review_opens_its_cases_in_chunks_resumes_and_matches_the_dry_run(self, mixed, monkeypatch):
        from workflow import review
        from workflow.models import Review
        b1 = db.session.scalar(select(OrgUnit).where(OrgUnit.code == "B1"))
        dry = review.annual_review(b1, "2025", mixed["hr_b1"], dry_run=True).outcomes
        db.session.rollback()
        monkeypatch.setattr(batch, "REVIEW_CHUNK", 1)
        job = jobs.enqueue("annual_review", {"unit": "B1", "period": "2025"}, mixed["hr_b1"])
        db.session.commit()
        restore = crash_after(monkeypatch, 2)           # the stored run, then the first case
        with pytest.raises(Crash):
            jobs.run_queued("w1")
        db.session.rollback()
        restore()
        assert count(Case, Case.kind.in_(("demotion", "dismissal")), Case.reason != "misconduct") == 1
        expire_lease(job.id)
        jobs.run_queued("w2")
        db.session.expire_all()
        job = db.session.get(Job, job.id)
        assert (job.status, job.done, job.result["opened"]) == ("done", job.total, 3)
        assert job.total == 3 + job.result["moved"]           # the cases and the tier moves
        stored = db.session.get(Review, job.result["review"])
        assert [{k: v for k, v in o.items() if k != "case"} for o in stored.outcomes] == dry
        opened = {o["username"]: o["case"] for o in stored.outcomes if o["case"]}
        assert set(opened) == {"s9", "s11", "p0"}
        assert count(Case, Case.kind.in_(("demotion", "dismissal")), Case.reason != "misconduct") == 3
        again = jobs.enqueue("annual_review", {"unit": "B1", "period": "2025"}, mixed["admin"])
        db.session.commit()
        jobs.run_queued("w1")
        db.session.expire_all()
        again = db.session.get(Job, again.id)
        assert again.result == {"review": stored.id, "stored": True, "opened": 0, "moved": 0}
        assert count(Case, Case.kind.in_(("demotion", "dismissal")), Case.reason != "misconduct") == 3
        assert audit.verify().ok

    def test_who_may_start_a_review_job(self, mixed):
        with pytest.raises(Forbidden):
            jobs.enqueue("annual_review", {"unit": "B1", "period": "2025"}, mixed["appr_b1"])
        with pytest.raises(Invalid):
            jobs.enqueue("annual_review", {"unit": "B1", "period": "last year"}, mixed["hr_b1"])
        db.session.rollback()
        assert count(Job) == 0


def test_a_review_that_fails_half_way_is_retried_and_goes_on_where_it_stopped(bank, make_person, monkeypatch):
    """A case the engine refuses in a later chunk fails the job; the stored run keeps what was done, and the
    job retried once the cause is fixed opens the rest, nothing twice."""
    from tests.workflow.test_review import managers
    from workflow.errors import Conflict, Refused
    from workflow.models import Review
    managers(make_person, "T1", "senior-3", list(range(99, 59, -2)), "s")     # 20: the last 2 re-compete
    monkeypatch.setattr(batch, "REVIEW_CHUNK", 1)
    real, calls = engine.open_case, []

    def refusing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise Refused("nobody may act on the step 'review'")
        return real(*args, **kwargs)
    monkeypatch.setattr(engine, "open_case", refusing)
    job = jobs.enqueue("annual_review", {"unit": "B1", "period": "2025"}, bank["hr_b1"])
    db.session.commit()
    jobs.run_queued("w1")
    db.session.expire_all()
    job = db.session.get(Job, job.id)
    assert (job.status, job.error) == ("failed", "nobody may act on the step 'review'")
    with pytest.raises(Conflict):
        jobs.retry(db.session.get(Job, jobs.enqueue("bulk_decision", {"action": "qualify", "cases": [1]},
                                                    bank["appr_b1"]).id))
    db.session.rollback()
    opened_before = count(Case, Case.reason == "recompete")
    monkeypatch.setattr(engine, "open_case", real)
    jobs.retry(job)
    db.session.commit()
    jobs.run_queued("w1")
    db.session.expire_all()
    job = db.session.get(Job, job.id)
    stored = db.session.get(Review, job.result["review"])
    wanted = [o["username"] for o in stored.outcomes if o["outcome"] == "recompete"]
    assert job.status == "done" and opened_before == 1 and len(wanted) == 2
    assert count(Case, Case.reason == "recompete") == 2
    assert sorted(o["username"] for o in stored.outcomes if o["case"]) == sorted(wanted)
    assert audit.verify().ok

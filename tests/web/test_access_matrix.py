"""The access matrix (tests/web/access_matrix.py): every route of the pages and the API, as every role, on a
case at every stop of its way → the status the table names; a refused request changes nothing; a route
without an entry fails."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from tests.web.access_matrix import AREAS, MATRIX, ROLES, STATES, Probe
from tests.web.api_checks import err
from web.auth import issue_token
from workflow import clock, engine, jobs, review, rounds
from workflow.models import db, Case, Event, Person, Review, RoleAssignment, Round
from workflow.models.customers import Customer, CustomerTier, Lead, TieringRun, TierProposal, Visit
from workflow.models.jobs import Job

IGNORED_METHODS = {"HEAD", "OPTIONS"}


def url_rules(app) -> set[tuple[str, str]]:
    return {(rule.rule, method) for rule in app.url_map.iter_rules() for method in rule.methods - IGNORED_METHODS}


def test_every_route_has_an_entry(app):
    """A new route fails here until access_matrix.py says who may use it; a removed one leaves a stale entry."""
    routes = url_rules(app)
    missing = sorted(routes - set(MATRIX))
    stale = sorted(set(MATRIX) - routes)
    assert not missing, "routes with no entry in tests/web/access_matrix.py: " + ", ".join(map(str, missing))
    assert not stale, "entries for routes that no longer exist: " + ", ".join(map(str, stale))


def test_every_probe_reaches_its_route(app):
    """Each probe's URL is matched to the rule it is filed under, so the matrix tests what it says."""
    adapter = app.url_map.bind("localhost")
    filled = {"case": 1, "round_open": 1, "round_decided": 2, "review": 1, "job": 1, "role": "self",
              "customer": 1, "run": 1, "proposal": 1, "lead": 1, "visit": 1, "manager": "emp",
              "pf_customer": 1}
    for (rule, method), entry in MATRIX.items():
        assert entry.probes, (rule, method)
        states = set()
        for probe in entry.probes:
            path, _, query = probe.url.format(**filled).partition("?")
            matched, _args = adapter.match(path, method=method, query_args=query)
            expected = next(r.endpoint for r in app.url_map.iter_rules() if r.rule == rule and method in r.methods)
            assert matched == expected, (probe.url, rule, matched)
            if probe.per_state:
                states |= set(probe.expect)
                assert all(set(codes) == set(ROLES) for codes in probe.expect.values()), probe.url
            else:
                assert set(probe.expect) == set(ROLES), probe.url
        # A route about the case is probed at every stop of its way.
        assert not states or states == set(STATES), (rule, method, sorted(set(STATES) - states))


# --- the world ---------------------------------------------------------------------------------------------

class World:
    """The bank, a review, two rounds, emp's promotion (which `walk_to` moves on through the engine) and a
    job."""

    def __init__(self, bank, make_person):
        make_person("hr_b3", bank["units"]["B3"], roles=["hr@B3"])
        db.session.commit()
        b1, hr = bank["units"]["B1"], self.person("hr_b1")
        self.review = review.annual_review(b1, "2024", hr).review.id
        db.session.commit()
        today = clock.today()
        opened = rounds.open_round(hr, b1, "2026", None, today, today + dt.timedelta(days=30), ["senior"])
        decided = rounds.open_round(hr, b1, "2026", None, today, today + dt.timedelta(days=30), ["manager"])
        db.session.commit()
        rounds.decide_round(decided, hr)
        db.session.commit()
        self.round_open, self.round_decided = opened.id, decided.id
        case = engine.create_promotion(self.person("emp"), self.person("emp"), "senior", "申请晋级")
        db.session.commit()
        self.case = case.id
        self.job = jobs.enqueue("bulk_decision", {"action": "qualify", "cases": [case.id]}, hr).id
        db.session.commit()
        self.places: dict = {}
        for area in AREAS:      # customers, tiering runs, portfolios, leads: each area's own objects
            self.places.update(area.build(self))
            db.session.commit()

    @staticmethod
    def person(username: str) -> Person:
        return db.session.scalar(select(Person).where(Person.username == username))

    def act(self, action: str, who: str, **data) -> None:
        case = db.session.get(Case, self.case)
        engine.fire(case, action, self.person(who), data)
        db.session.commit()

    def walk_to(self, state: str) -> None:
        """From the previous stop of STATES to `state`; panel1 scores only after the panel_scoring stop."""
        if state == "returned":
            self.act("return", "appr_b1", comment="补充业绩材料")
        elif state == "panel_scoring":
            self.act("resubmit", "emp", statement="已补充")
            self.act("qualify", "appr_b1")
            self.act("assign_panel", "hr_b1", members=["panel1", "panel2", "panel3"])
            self.act("score", "panel2", score=85)
            self.act("score", "panel3", score=75)
        elif state == "hr_approval":
            self.act("score", "panel1", score=80)
            self.act("supervisor_score", "sup_t1", score=90)
        elif state == "effective":
            self.act("approve", "hr_b1")
        db.session.expire_all()
        assert db.session.get(Case, self.case).state == state

    def fill(self, text: str, role: str = "") -> str:
        return text.format(case=self.case, round_open=self.round_open, round_decided=self.round_decided,
                           review=self.review, job=self.job, role=role, **self.places)


def fingerprint() -> tuple:
    """What a refused request must leave as it was: every event, case, round, review, role and job, customer,
    tier, tiering run and decided proposal, visit and lead (one query)."""
    counts = [select(func.count(Event.id)), select(func.max(Event.id)), select(func.count(Case.id)),
              select(func.sum(Case.version)), select(func.count(Round.id)), select(func.sum(Round.version)),
              select(func.count(Review.id)), select(func.count(RoleAssignment.id)), select(func.count(Job.id)),
              select(func.count(Customer.id)), select(func.sum(Customer.version)),
              select(func.count(CustomerTier.id)), select(func.count(TieringRun.id)),
              select(func.sum(TieringRun.version)), select(func.count(TierProposal.decided_by_id)),
              select(func.count(Visit.id)), select(func.count(Lead.id)), select(func.sum(Lead.version))]
    return tuple(db.session.execute(select(*[q.scalar_subquery() for q in counts])).one())


class Callers:
    """A client per role: a bearer token for /api/v1, a browser session for the pages. Both are made as a
    login makes them (issue_token, Flask-Login's session), without checking a password twenty times."""

    def __init__(self, app):
        self.app = app
        self.anonymous = app.test_client()
        self.anonymous.get("/lang/en")
        self.tokens, self.pages = {}, {}
        for role, username in ROLES.items():
            if username:
                person = World.person(username)
                self.tokens[role] = {"Authorization": f"Bearer {issue_token(person)}"}
                self.pages[role] = self.session_of(person)
        db.session.commit()

    def session_of(self, person: Person):
        client = self.app.test_client()
        client.get("/lang/en")
        with client.session_transaction() as session:
            session["_user_id"], session["_fresh"] = person.get_id(), True
        return client

    def send(self, role: str, method: str, url: str, probe: Probe, body: dict | None):
        api = url.startswith("/api/")
        if ROLES[role] is None:
            client, headers = self.anonymous, {}
        elif api:
            client, headers = self.anonymous, self.tokens[role]
        else:
            client = self.session_of(World.person(ROLES[role])) if probe.fresh_login else self.pages[role]
            headers = {}
        kwargs = {"headers": headers}
        if method != "GET":
            kwargs["json" if api else "data"] = body
        return client.open(url, method=method, **kwargs)


def check(callers: Callers, world: World, probes, state: str | None, failures: list[str]) -> int:
    sent = 0
    for (rule, method), probe in probes:
        expect = probe.expect[state] if state else probe.expect
        url = world.fill(probe.url)
        for role, status in expect.items():
            before = None if probe.changes or method == "GET" else fingerprint()
            body = {k: world.fill(v, role) if isinstance(v, str) else v for k, v in (probe.body or {}).items()}
            where = f"{method} {url} as {role} ({ROLES[role]})" + (f" at {state}" if state else "")
            sent += 1
            try:
                resp = callers.send(role, method, url, probe, body)
            except Exception as exc:      # the testing app lets a 500's exception through: list it, go on
                db.session.rollback()
                failures.append(f"{where}: raised {exc!r}, expected {status}")
                continue
            resp.close()     # a file served (a stylesheet) is closed, not left to the collector
            if resp.status_code != status:
                failures.append(f"{where}: {resp.status_code}, expected {status}")
            elif before is not None and fingerprint() != before:
                failures.append(f"{where}: answered {status} but changed data")
    return sent


@pytest.fixture
def world(bank, make_person):
    return World(bank, make_person)


def test_access_matrix(app, world):
    callers = Callers(app)
    flat = [(key, p) for key, entry in MATRIX.items() for p in entry.probes if not p.per_state]
    by_state = [(key, p) for key, entry in MATRIX.items() for p in entry.probes if p.per_state]
    failures: list[str] = []
    sent = check(callers, world, flat, None, failures)
    for state in STATES:
        world.walk_to(state)
        sent += check(callers, world, [(k, p) for k, p in by_state if state in p.expect], state, failures)
    assert not failures, f"{len(failures)} of {sent} answers differ from the matrix:\n" + "\n".join(failures)


# --- codes the matrix found wrong, fixed: a unit named in a page's query that the caller may not see is 404,
# as in the API, before any 403 about the caller's roles or 400 about the form's choices --------------------

def test_pipeline_page_answers_404_for_a_unit_out_of_sight(bank, page, api):
    assert page("emp").get("/hr/pipeline?unit=B1").status_code == 404        # was 403 (no pipeline role)
    assert page("emp").get("/hr/pipeline?unit=NOWHERE").status_code == 404
    assert api("emp").get("/pipeline?unit=B1").status_code == 404           # the API's answer
    assert page("emp").get("/hr/pipeline").status_code == 403               # no unit named: the role decides
    assert page("appr_t2").get("/hr/pipeline?unit=B1").status_code == 404
    assert page("appr_b1").get("/hr/pipeline?unit=B1").status_code == 200


def test_review_preview_answers_404_for_a_unit_out_of_sight(bank, page, api, make_person):
    make_person("hr_b3", bank["units"]["B3"], roles=["hr@B3"])
    db.session.commit()
    query = "/reviews/preview?unit=B1&period=2025"
    assert page("hr_b3").get(query).status_code == 404          # was 400: B1 is not among the form's units
    assert page("emp").get(query).status_code == 404            # was 403
    assert page("hr_b1").get("/reviews/preview?unit=NOWHERE&period=2025").status_code == 404
    assert api("hr_b3").post("/reviews", {"unit": "B1", "period": "2025", "dry_run": True}).status_code == 404
    refused = page("appr_b1").get(query)                          # sees B1, is not HR there
    assert refused.status_code == 403 and "Only HR at B1 or above" in refused.get_data(as_text=True)
    assert page("hr_b1").get(query).status_code == 200
    assert db.session.scalar(select(func.count(Review.id))) == 0   # previews write nothing


def test_import_api_refuses_those_who_may_not_import_before_reading_the_files(bank, api):
    # was 400 ("choose a file") for everyone: who may comes before what was sent
    assert err(api("hr_b1").post("/jobs/imports"), 403)["code"] == "forbidden"
    assert err(api("admin").post("/jobs/imports"), 400)["code"] == "bad_request"
    assert db.session.scalar(select(func.count(Job.id))) == 0


def test_a_queued_bulk_decision_has_a_page(bank, page):
    # was a 500: a job with no result yet made the page iterate the dict's own items method
    case = engine.create_promotion(bank["emp"], bank["emp"], "senior", "申请晋级")
    job = jobs.enqueue("bulk_decision", {"action": "qualify", "cases": [case.id]}, World.person("appr_b1"))
    db.session.commit()
    assert page("appr_b1").get(f"/jobs/{job.id}").status_code == 200

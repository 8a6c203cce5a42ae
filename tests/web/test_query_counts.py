"""No N+1: the SQL statements a page or an API list runs do not grow with the rows it shows.

Each list is requested once over a few cases (one in each state the lists show), then again after the
data grew to over twenty; the count of statements (SQLAlchemy's `before_cursor_execute`) must be the same.
Every request starts from an empty session, as in production, so nothing loaded earlier hides a query.
The case page is compared between a case with a short history and one with a long one. The API's lists
name their neighbouring pages in a Link header.
"""
from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from contextlib import contextmanager
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from sqlalchemy import event, select

from tests.conftest import TODAY
from workflow import clock, engine, policy as policy_mod, review, rounds
from workflow.models import db, OrgUnit, Person

PANEL = ["panel1", "panel2", "panel3"]
# (who, path): the pages and the API lists, each with filters where it has them.
PAGES = [
    ("appr_b1", "/inbox"), ("hr_b1", "/inbox"),
    ("hr_b1", "/cases/"), ("hr_b1", "/cases/?kind=promotion&unit=B1&level=senior"),
    ("hr_b1", "/cases/?state=panel_scoring"),
    ("hr_b1", "/hr/pipeline?unit=B1"), ("hr_hq", "/hr/pipeline?unit=HQ&kind=promotion"),
    ("hr_r1", "/hr/pipeline?unit=R1"), ("hr_b1", "/hr/pipeline/funnel.svg?unit=B1"),
    ("hr_hq", "/hr/pipeline/grades.svg?unit=HQ"), ("hr_b1", "/cases/?unit=B1&overdue=1&direct=0"),
    ("hr_b1", "/publicity"), ("emp", "/publicity"), ("hr_b1", "/rounds/"), ("hr_b1", "/reviews/"),
    ("admin", "/admin/people"), ("admin", "/admin/people?role=panel"), ("serial", "/"),
]
APIS = [
    ("appr_b1", "/inbox"), ("hr_b1", "/inbox"), ("hr_b1", "/cases"),
    ("hr_b1", "/cases?kind=promotion&unit=B1"), ("hr_b1", "/pipeline?unit=B1"), ("hr_b1", "/publicity"),
    ("hr_hq", "/pipeline?unit=HQ"), ("hr_b1", "/cases?unit=T1&direct=1&overdue=1&level=senior"),
    ("emp", "/publicity"), ("hr_b1", "/rounds"), ("hr_b1", "/reviews"),
]


@contextmanager
def counting():
    """The SQL statements run inside the block."""
    statements: list[str] = []

    def hook(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", hook)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", hook)


def person(username: str) -> Person:
    return db.session.scalar(select(Person).filter_by(username=username))


def unit(code: str) -> OrgUnit:
    return db.session.scalar(select(OrgUnit).filter_by(code=code))


class World:
    """The bank of tests/conftest.py under a policy with publicity, grown by `grow(n)`: n more managers, each
    with a promotion in one of five states (half of them filed a month ago, so overdue now), a round and a
    stored annual review per step."""

    STATES = 5

    def __init__(self, bank, make_person, tmp_path):
        doc = yaml.safe_load((policy_mod.POLICY_DIR / "bank_corporate.yaml").read_text(encoding="utf-8"))
        doc["publicity"] = {"working_days": 5}
        path = tmp_path / "bank_publicity.yaml"
        path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
        engine.activate_policy(policy_mod.load_file(str(path)), "with publicity")
        db.session.commit()
        self.make_person, self.size = make_person, 0

    def promotion(self, i: int):
        team = unit("T1" if i % 2 else "T2")
        p = self.make_person(f"m{i:03d}", team, grade="manager-3", performance=85, skill_test=75)
        clock.fix_today(TODAY - dt.timedelta(days=30) if i % 2 else TODAY)
        try:
            case = engine.create_promotion(p, p, "senior", "请审批")
            stage = i % self.STATES
            sup = "sup_t1" if i % 2 else "sup_b1"
            if stage >= 1:
                engine.fire(case, "qualify", person("appr_b1"), {})
            if stage >= 2:
                engine.fire(case, "assign_panel", person("hr_b1"), {"members": PANEL})
            if stage >= 3:
                for m in PANEL:
                    engine.fire(case, "score", person(m), {"score": 80})
                engine.fire(case, "supervisor_score", person(sup), {"score": 85})
            if stage >= 4:
                engine.fire(case, "approve", person("hr_b1"), {"comment": "同意"})
        finally:
            clock.fix_today(TODAY)
        return case

    def grow(self, n: int) -> None:
        for i in range(self.size, self.size + n):
            self.promotion(i)
            hr = person("hr_b1")
            rounds.open_round(hr, unit("B1"), str(2000 + i), None, TODAY,
                              TODAY + dt.timedelta(days=30), ["senior"])
            review.annual_review(unit("B1"), str(2000 + i), hr)
        self.size += n
        db.session.commit()


@pytest.fixture
def world(bank, make_person, tmp_path):
    return World(bank, make_person, tmp_path)


def statements_of(open_url) -> list[str]:
    db.session.remove()             # a fresh session, as each request has in production
    with counting() as statements:
        resp = open_url()
    assert resp.status_code == 200, (resp.status_code, resp.get_data(as_text=True)[:500])
    return statements


def counts(page, api) -> dict[str, int]:
    out = {}
    for who, path in PAGES:
        out[f"page {who} {path}"] = len(statements_of(lambda: page(who).get(path)))
    for who, path in APIS:
        out[f"api {who} {path}"] = len(statements_of(lambda: api(who).get(path)))
    return out


def explain(page, api, name: str) -> str:
    """The statements a list repeats, to say where an N+1 comes from."""
    kind, who, path = name.split(" ", 2)
    statements = statements_of(lambda: page(who).get(path) if kind == "page" else api(who).get(path))
    return "\n".join(f"{n}x {s[:160]}" for s, n in Counter(statements).most_common(3) if n > 1)


def test_lists_run_as_many_queries_for_twenty_rows_as_for_five(world, make_person, page, api):
    # Someone whose own cases fill the home page: filed and withdrawn, again and again.
    serial = make_person("serial", unit("T1"), grade="manager-3", performance=85, skill_test=75)
    db.session.commit()
    world.grow(World.STATES)
    for _ in range(2):
        engine.fire(engine.create_promotion(serial, serial, "senior", "一"), "withdraw", serial, {})
    db.session.commit()
    few = counts(page, api)

    world.grow(20 - World.STATES + 2)
    serial = person("serial")
    for _ in range(20):
        engine.fire(engine.create_promotion(serial, serial, "senior", "二"), "withdraw", serial, {})
    db.session.commit()
    many = counts(page, api)

    grew = {name: (few[name], many[name]) for name in few if many[name] > few[name]}
    assert not grew, "\n".join(f"{name}: {a} -> {b} statements\n{explain(page, api, name)}"
                               for name, (a, b) in grew.items())
    # The lists really show the rows they were counted over (one page of each).
    hr = api("hr_b1")
    assert hr.get("/cases?kind=promotion").get_json()["total"] == world.size + 22
    assert hr.get("/rounds").get_json()["total"] == world.size
    assert len(hr.get("/publicity").get_json()["items"]) == world.size // World.STATES


def test_case_page_runs_as_many_queries_for_a_long_history_as_for_a_short_one(world, page, api):
    world.grow(1)
    short = world.promotion(100)                      # filed, nothing else yet
    long = world.promotion(110)                       # filed too, in the same team
    appr = person("appr_b1")
    for n in range(8):                               # returned and resubmitted eight times
        engine.fire(long, "return", appr, {"comment": f"补充材料 {n}"})
        engine.fire(long, "resubmit", long.employee, {"statement": f"第{n + 2}稿"})
    db.session.commit()
    assert (short.state, long.state) == ("qualification_review", "qualification_review")
    assert len(long.events) == 17
    short, long = short.id, long.id
    for who in ("hr_b1", "appr_b1", "sup_b1"):
        for kind, get in (("page", lambda cid: page(who).get(f"/cases/{cid}")),
                          ("api", lambda cid: api(who).get(f"/cases/{cid}"))):
            a, b = len(statements_of(lambda: get(short))), len(statements_of(lambda: get(long)))
            assert b <= a, f"{kind} as {who}: {a} statements for 1 event, {b} for 17"


def test_api_lists_link_their_pages(world, api):
    world.grow(3)
    resp = api("hr_b1").get("/cases?kind=promotion&per_page=1&page=2")
    assert resp.get_json()["total"] == 3
    links = dict((rel, url) for url, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', resp.headers["Link"]))
    assert set(links) == {"first", "prev", "next", "last"}
    pages = {rel: parse_qs(urlsplit(url).query) for rel, url in links.items()}
    assert {rel: q["page"] for rel, q in pages.items()} == {"first": ["1"], "prev": ["1"], "next": ["3"],
                                                           "last": ["3"]}
    assert all(q["kind"] == ["promotion"] and q["per_page"] == ["1"] for q in pages.values())
    assert api("hr_b1").get(urlsplit(links["next"]).path.removeprefix("/api/v1") + "?"
                            + urlsplit(links["next"]).query).get_json()["page"] == 3
    last = api("hr_b1").get("/cases?kind=promotion&per_page=1&page=3").headers["Link"]
    assert 'rel="next"' not in last and 'rel="prev"' in last

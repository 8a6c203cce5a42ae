"""Fuzzing /api/v1 from its OpenAPI description (web/openapi.py): schemathesis generates requests for every
operation, valid and malformed, and sends them through the Flask test client as one of several logged-in
callers, on a seeded dataset (cases in several states, a round, a stored review). Each answer must be

- never a 5xx (an exception escaping a handler fails the test too);
- a status code the description lists for the operation, with its content type and schema;
- when it is a refusal (4xx), a database that nothing changed: a digest of the domain tables is taken before
  and after every request.

Bounded for CI: GRADEFLOW_FUZZ_EXAMPLES examples per operation (default 6, derandomised so that every run
tries the same inputs). A long run: `GRADEFLOW_FUZZ_EXAMPLES=500 python -m pytest tests/web/test_api_fuzz.py`
(then random, so each long run explores anew).
"""
from __future__ import annotations

import hashlib
import json
import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings, strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)
from sqlalchemy import select

from web.openapi import document
from workflow.models import db

from api_checks import err, ok  # noqa: E402

EXAMPLES_ENV = os.environ.get("GRADEFLOW_FUZZ_EXAMPLES", "").strip()
EXAMPLES = int(EXAMPLES_ENV) if EXAMPLES_ENV else 6
CALLERS = ("admin", "hr_b1", "appr_t1", "emp")     # HR at the root, HR of a branch, an approver, an employee
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# What a refusal must leave alone: everything but the log-in bookkeeping (a failed log-in is counted, a
# token is issued by a successful one).
UNTRACKED = {"login_attempts", "api_tokens"}

SCHEMA = schemathesis.openapi.from_dict(document())
OPERATIONS = [(path, method.upper()) for path, item in document()["paths"].items() for method in item]


def digest() -> str:
    """A hash of every row of the tracked tables, in primary-key order."""
    h = hashlib.sha256()
    for table in db.metadata.sorted_tables:
        if table.name in UNTRACKED:
            continue
        h.update(table.name.encode())
        for row in db.session.execute(select(table).order_by(*table.primary_key.columns)):
            h.update(repr(tuple(row)).encode())
    return h.hexdigest()


@pytest.fixture
def seeded(bank, api, make_person):
    """Cases in several states and kinds, an open round, a stored review and a queued job: ids the fuzzer
    aims at."""
    make_person("newbie", bank["units"]["T1"], status="probation", grade="assistant-1")
    db.session.commit()
    hr = api("hr_b1")
    cases = [ok(api("emp").post("/cases", {"kind": "promotion", "target_grade": "senior",
                                           "statement": "申请"}), 201)["id"]]
    qualified = ok(api("emp2").post("/cases", {"kind": "promotion", "target_grade": "manager-2"}), 201)["id"]
    ok(api("appr_t1").post(f"/cases/{qualified}/qualify", {"comment": "ok"}))
    cases += [qualified,
              ok(hr.post("/cases", {"kind": "probation", "employee": "newbie"}), 201)["id"],
              ok(api("sup_t1").post("/cases", {"kind": "demotion", "employee": "emp2", "reason": "misconduct",
                                              "severity": "major", "comment": "违规"}), 201)["id"]]
    rounds = [ok(hr.post("/rounds", {"unit": "B1", "period": "2026", "opens_on": "2026-03-01",
                                     "closes_on": "2026-03-31", "levels": ["senior"]}), 201)["id"]]
    reviews = [ok(api("hr_r1").post("/reviews", {"unit": "B2", "period": "2025"}), 201)["id"]]
    jobs = [ok(api("appr_t1").post("/jobs/bulk-decisions", {"action": "qualify", "cases": cases}), 202)["id"]]
    return {"case_id": cases, "round_id": rounds, "review_id": reviews, "job_id": jobs}


def strategy(op, ids: dict[str, list[int]]):
    """Valid and malformed requests for the operation; its path ids drawn half the time from the seeded
    rows."""
    modes = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
    free = st.one_of(*(op.as_strategy(generation_mode=mode) for mode in modes))
    names = [p for p in ids if "{" + p + "}" in op.path]
    if not names:
        return free
    aimed = [op.as_strategy(generation_mode=mode, path_parameters={n: value for n in names})
             for mode in modes for value in ids[names[0]]] if len(names) == 1 else []
    return st.one_of(free, *aimed)


def fuzz_operation(op, ids, client, headers) -> None:
    """Run the examples of one operation; raises the first failure, shrunk to its smallest example."""

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=not EXAMPLES_ENV,
              suppress_health_check=list(HealthCheck), print_blob=True)
    @given(case=strategy(op, ids), caller=st.sampled_from(CALLERS))
    def fuzz(case, caller):
        before = digest()
        response = case.call(app=client.application, session=client, headers=headers[caller])
        after = digest()
        case.validate_response(response, checks=CHECKS)
        if 400 <= response.status_code < 500:
            assert after == before, (f"{case.method} {case.formatted_path} answered {response.status_code} "
                                     f"to {caller} but changed the database")

    fuzz()


def test_every_operation_survives_fuzzing(seeded, client, api):
    """Every operation in turn on one seeded database; the failures of all of them are reported together."""
    headers = {who: api(who).headers for who in CALLERS}
    failures = []
    for path, method in OPERATIONS:
        try:
            fuzz_operation(SCHEMA[path][method], seeded, client, headers)
        # Every operation's failure is collected, then reported; schemathesis' FailureGroup is a
        # BaseExceptionGroup.
        except (Exception, FailureGroup) as exc:
            notes = "\n".join(getattr(exc, "__notes__", []))
            failures.append(f"--- {method} {path}: {type(exc).__name__}: {exc}\n{notes}")
    assert not failures, "\n\n".join(failures)


# --- what the fuzzer found: regressions (one database each: loops, not parameters) ----------------------

def test_an_id_past_the_id_columns_is_not_found(bank, api, page):
    """It once overflowed SQLite's integers (500); it matches no route now, on the pages too."""
    admin = api("admin")
    for path in ("/rounds/9223372036854775808", "/cases/2147483648", "/reviews/99999999999999999999",
                 "/jobs/2147483648", "/cases/2147483648/qualify"):
        call = admin.post if path.endswith("qualify") else admin.get
        err(call(path), 404)
    assert page("admin").get("/cases/9223372036854775808").status_code == 404


def test_a_huge_page_number_is_malformed(bank, api):
    """Its OFFSET once overflowed the database's integers (500)."""
    for path in ("/reviews", "/cases", "/rounds", "/inbox", "/publicity", "/jobs"):
        assert "at most" in err(api("admin").get(f"{path}?page=184467440737095518"), 400)["message"], path
        assert ok(api("admin").get(f"{path}?page=1000000"))["items"] == [], path


def test_a_huge_round_id_in_a_new_case_is_refused(bank, api):
    before = digest()
    assert "no round" in err(api("emp").post("/cases", {"kind": "promotion", "target_grade": "senior",
                                                        "round": 2**63}), 422)["message"]
    assert digest() == before


def test_text_no_column_can_hold_is_malformed(bank, api, client, page):
    """PostgreSQL refuses NUL characters in text (it was a 500 there); no database stores a lone surrogate.
    Refused in a JSON body, a query and a form, on the API and the pages, changing nothing."""
    headers = {**api("hr_b1").headers, "Content-Type": "application/json"}
    before = digest()
    for path, body in [
        ("/auth/token", {"username": "\x00", "password": "x"}),            # the login throttle's query
        ("/auth/token", {"username": "admin", "password": "\ud800"}),
        ("/cases", {"kind": "promotion", "target_grade": "senior", "statement": "a\x00b"}),
        ("/rounds", {"unit": "B1", "period": "2026", "opens_on": "2026-03-01", "closes_on": "2026-03-31",
                     "levels": ["senior\x00"]}),
    ]:
        raw = json.dumps(body)      # escapes the NUL and the surrogate as \u0000 and \ud800
        assert "NUL" in err(client.post(f"/api/v1{path}", data=raw, headers=headers), 400)["message"], body
    assert "NUL" in err(api("admin").get("/reviews?period=%00"), 400)["message"]
    assert client.post("/login", data={"username": "a\x00", "password": "x"}).status_code == 400
    assert page("admin").get("/cases?state=%00").status_code == 400
    assert digest() == before

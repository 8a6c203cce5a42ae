"""The OpenAPI description of /api/v1 (web/openapi.py): it describes every route the application serves
under /api/v1 and nothing else, it is a valid OpenAPI 3.1 document, and it is served without logging in."""
from __future__ import annotations

import re

import pytest
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from web.openapi import document
from workflow.machines import RULEBOOKS

PREFIX = "/api/v1"
IGNORED_METHODS = {"HEAD", "OPTIONS"}


def served_operations(app) -> dict[tuple[str, str], list[str]]:
    """(path template, METHOD) -> the rule's variables, for every /api/v1 rule, in OpenAPI's spelling."""
    ops = {}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(PREFIX + "/"):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule[len(PREFIX):])
        for method in rule.methods - IGNORED_METHODS:
            ops[(path, method)] = sorted(rule.arguments)
    return ops


def described_operations(doc) -> dict[tuple[str, str], dict]:
    return {(path, method.upper()): op for path, item in doc["paths"].items() for method, op in item.items()}


def test_every_api_route_is_described_and_nothing_else(app):
    served, described = served_operations(app), described_operations(document())
    assert served, "no /api/v1 route found: the prefix changed?"
    missing = sorted(set(served) - set(described))
    assert not missing, f"routes with no description in web/openapi.py: {missing}"
    stale = sorted(set(described) - set(served))
    assert not stale, f"described in web/openapi.py but not served: {stale}"


def test_path_parameters_are_the_routes_variables(app):
    served, described = served_operations(app), described_operations(document())
    for key, variables in served.items():
        params = described[key].get("parameters", [])
        in_path = sorted(p["name"] for p in params if p["in"] == "path")
        assert in_path == variables, (key, in_path, variables)
        assert all(p["required"] for p in params if p["in"] == "path"), key


def test_the_document_is_valid_openapi():
    doc = document()
    assert doc["openapi"].startswith("3.1")
    validate(doc)


def test_the_validator_would_catch_a_broken_document():
    """The validity test above can fail: a dangling reference in a response without a description."""
    doc = document()
    doc["paths"]["/me"]["get"]["responses"]["200"] = {"content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Nowhere"}}}}
    with pytest.raises(OpenAPIValidationError):
        validate(doc)


def test_operations_have_unique_ids_and_document_errors_in_the_contract_shape():
    ops = described_operations(document())
    ids = [op["operationId"] for op in ops.values()]
    assert len(ids) == len(set(ids))
    for key, op in ops.items():
        codes = set(op["responses"])
        assert any(c.startswith("2") for c in codes), key
        for code in {c for c in codes if not c.startswith("2")}:
            assert op["responses"][code] == {"$ref": f"#/components/responses/E{code}"}, (key, code)
        public = op.get("security") == []
        assert public or "401" in codes, f"{key} needs a login but does not document 401"


def test_only_logging_in_and_the_description_are_public():
    public = sorted(key for key, op in described_operations(document()).items() if op.get("security") == [])
    assert public == [("/auth/token", "POST"), ("/openapi.json", "GET")]


def test_every_case_action_is_listed():
    enum = next(p for p in document()["paths"]["/cases/{case_id}/{action}"]["post"]["parameters"]
                if p["name"] == "action")["schema"]["enum"]
    assert set(enum) == {a for rb in RULEBOOKS.values() for a in rb.actions()}


def test_served_without_login_and_equal_to_the_module(client):
    resp = client.get("/api/v1/openapi.json")
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    assert resp.get_json() == document()
    assert client.get("/api/v1/me").status_code == 401      # the rest still needs a login


def test_callers_cannot_change_the_served_document(client):
    doc = document()
    doc["paths"].clear()
    assert client.get("/api/v1/openapi.json").get_json()["paths"]

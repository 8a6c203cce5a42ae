"""The access matrix of the customers routes (merged into tests/web/access_matrix.py's MATRIX): see that file
for Probe, entry, codes, among and the roles. `build(world)` makes this area's objects in the access
matrix's world (tests/web/test_access_matrix.World) through the engine and returns the placeholders its
probes' URLs and bodies use (e.g. {"customer": 12})."""
from __future__ import annotations

from typing import Any

from tests.web.access_matrix import Probe, among, codes, entry

# The customer lives at T1 and nobody holds it. Who sees it: the viewers (supervisor, approver, HR, admin)
# at T1 or above; who keeps it (edits it): HR and admins at T1 or above; who keeps customers anywhere (the
# create and import pages): HR and admins anywhere.
SEE = {"supervisor", "approver_in", "hr_in", "admin"}
KEEP = {"hr_in", "admin"}
KEEPERS = {"hr_in", "hr_out", "admin"}
# Asking for B3's customers: HR at B3 and the root's admin see it; for the others B3 is out of sight.
B3 = {"hr_out", "admin"}


def build(world) -> dict[str, Any]:
    from workflow import customers
    customer = customers.create_customer(world.person("hr_b1"), {
        "code": "CM-T1", "name": "杭州某某科技有限公司", "industry": "manufacturing", "unit": "T1",
        "inputs": {"monthly_revenue": 50, "employees": 300}})
    return {"customer": customer.id}


def _pages() -> dict:
    return {
        ("/customers", "GET"): entry(
            Probe("/customers", codes(200, anonymous=302)),
            Probe("/customers?unit=B3", among(B3, 200, 404, 302)),
            Probe("/customers?tier=nothing", codes(400, anonymous=302))),
        ("/customers.xlsx", "GET"): entry(
            Probe("/customers.xlsx", codes(200, anonymous=302)),
            Probe("/customers.xlsx?unit=NOWHERE", codes(404, anonymous=302))),
        ("/customers/<int:customer_id>", "GET"): entry(
            Probe("/customers/{customer}", among(SEE, 200, 404, 302)),
            Probe("/customers/999999", codes(404, anonymous=302))),
        ("/customers/new", "GET"): entry(Probe("/customers/new", among(KEEPERS, 200, 403, 302))),
        ("/customers/new", "POST"): entry(
            Probe("/customers/new", among(KEEPERS, 400, 403, 302), {"unit": "T1"})),
        ("/customers/<int:customer_id>/edit", "GET"): entry(
            Probe("/customers/{customer}/edit", {**among(SEE, 403, 404, 302), "hr_in": 200, "admin": 200})),
        ("/customers/<int:customer_id>/edit", "POST"): entry(
            Probe("/customers/{customer}/edit", {**among(SEE, 403, 404, 302), "hr_in": 400, "admin": 400},
                  {"version": "0"}),
            Probe("/customers/999999/edit", codes(404, anonymous=302), {"version": "0"})),
        ("/customers/import", "GET"): entry(Probe("/customers/import", among(KEEPERS, 200, 403, 302))),
        ("/customers/import", "POST"): entry(Probe("/customers/import", among(KEEPERS, 400, 403, 302), {})),
        ("/customers/import-template.xlsx", "GET"): entry(
            Probe("/customers/import-template.xlsx", among(KEEPERS, 200, 403, 302))),
    }


def _api() -> dict:
    # Creating at T1: who cannot see T1 gets 404; who sees it (or works there) but may not keep it, 403; HR
    # over T1 gets past authority and is refused for the body (no code): 400.
    create = {"anonymous": 401, "self": 403, "other": 403, "supervisor": 403, "approver_in": 403,
              "approver_out": 404, "hr_in": 400, "hr_out": 404, "panel_on": 404, "panel_off": 404,
              "admin": 400}
    return {
        ("/api/v1/customers", "GET"): entry(
            Probe("/api/v1/customers", codes(200, anonymous=401)),
            Probe("/api/v1/customers?unit=B3", among(B3, 200, 404, 401)),
            Probe("/api/v1/customers?active=maybe", codes(400, anonymous=401))),
        ("/api/v1/customers", "POST"): entry(Probe("/api/v1/customers", create, {"unit": "T1"})),
        ("/api/v1/customers/<int:customer_id>", "GET"): entry(
            Probe("/api/v1/customers/{customer}", among(SEE, 200, 404, 401)),
            Probe("/api/v1/customers/999999", codes(404, anonymous=401))),
        ("/api/v1/customers/<int:customer_id>", "PATCH"): entry(
            Probe("/api/v1/customers/{customer}", {**among(SEE, 403, 404, 401), "hr_in": 409, "admin": 409},
                  {"version": 0, "name": "新名称"}),
            Probe("/api/v1/customers/{customer}", {**among(SEE, 403, 404, 401), "hr_in": 400, "admin": 400},
                  {"name": "新名称"})),
        ("/api/v1/customers.xlsx", "GET"): entry(
            Probe("/api/v1/customers.xlsx", codes(200, anonymous=401)),
            Probe("/api/v1/customers.xlsx?unit=B3", among(B3, 200, 404, 401))),
        ("/api/v1/imports/customers", "POST"): entry(
            Probe("/api/v1/imports/customers", among(KEEPERS, 400, 403, 401))),
        ("/api/v1/import-templates/customers.xlsx", "GET"): entry(
            Probe("/api/v1/import-templates/customers.xlsx", among(KEEPERS, 200, 403, 401))),
    }


MATRIX: dict = {**_pages(), **_api()}

"""The access matrix of the portfolios routes (merged into tests/web/access_matrix.py's MATRIX): see that file
for Probe, entry, codes, among and the roles. `build(world)` makes this area's objects in the access
matrix's world (tests/web/test_access_matrix.World) and returns the placeholders its probes use:
{pf_customer} a core customer of T1 held by emp, {visit} emp's visit to it, {manager} emp.

Who sees a T1 customer: emp who holds it, and the holders of hr, admin, approver or supervisor at T1 or
above (sup_t1, appr_b1, hr_b1, admin); the others get 404. HR (and admin) over T1 assign and release it;
its holder, sup_t1, hr_b1 and admin record its visits; appr_b1 sees it but does neither (403)."""
from __future__ import annotations

import datetime as dt
from typing import Any

from tests.web.access_matrix import UNIT_B1, among, codes, entry, Probe
from workflow import customers, engine, portfolios
from workflow.models import db
from workflow.models.customers import Customer

# A viewing role anywhere.
VIEWERS = {"supervisor", "approver_in", "approver_out", "hr_in", "hr_out", "admin"}
KEEPERS = {"hr_in", "hr_out", "admin"}                                              # hr or admin anywhere
SEES = {"self", "supervisor", "approver_in", "hr_in", "admin"}                      # see emp's T1 customer
MANAGE = {"hr_in", "admin"}
SERVE = {"self", "supervisor", "hr_in", "admin"}


def build(world) -> dict[str, Any]:
    emp = world.person("emp")
    c = Customer(code="PF-1", name="包保客户", unit=emp.unit, inputs={})
    db.session.add(c)
    db.session.flush()
    customers.set_tier(c, "core", score=None, source="admin", actor=None, effective_on=dt.date(2025, 6, 1))
    customers.assign(c, emp, None, pol=engine.active_policy()[1], today=dt.date(2025, 6, 1))
    visit = portfolios.record_visit(emp, c, dt.date(2026, 1, 5), "on_site", "年初拜访")
    db.session.commit()
    return {"pf_customer": c.id, "visit": visit.id, "manager": emp.username}


def _customer_post(yes: int, allowed: set[str], anonymous: int) -> dict[str, int]:
    """A POST on the customer: 404 for those who do not see it, 403 for those who see it without the right,
    `yes` (a refusal of the body) for those with it."""
    out = among(SEES, 403, 404, anonymous)
    out.update({role: yes for role in allowed})
    return out


CUSTOMER = "/customers/{pf_customer}"
API_CUSTOMER = "/api/v1/customers/{pf_customer}"

MATRIX: dict = {
    # --- pages ---
    ("/portfolios", "GET"): entry(Probe("/portfolios", among(VIEWERS, 200, 403, 302)),
                                  Probe("/portfolios?unit=B1", among(UNIT_B1, 200, 404, 302)),
                                  Probe("/portfolios?unit=NOWHERE", codes(404, anonymous=302))),
    ("/portfolios.xlsx", "GET"): entry(Probe("/portfolios.xlsx?unit=B1", among(UNIT_B1, 200, 404, 302))),
    ("/portfolios/released", "GET"): entry(Probe("/portfolios/released", among(KEEPERS, 200, 403, 302)),
                                           Probe("/portfolios/released?unit=B1",
                                                 among(MANAGE, 200, 404, 302))),
    # Nothing ticked: 400 for HR; the others may assign nothing.
    ("/portfolios/released", "POST"): entry(Probe("/portfolios/released", among(KEEPERS, 400, 403, 302),
                                                  {"manager": "emp2"})),
    ("/portfolios/<username>", "GET"): entry(Probe("/portfolios/{manager}", among(SEES, 200, 404, 302)),
                                             Probe("/portfolios/nobody", codes(404, anonymous=302))),
    ("/visits/overdue", "GET"): entry(Probe("/visits/overdue", among(VIEWERS, 200, 403, 302)),
                                      Probe("/visits/overdue?unit=B1", among(UNIT_B1, 200, 404, 302))),
    ("/visits/overdue.xlsx", "GET"): entry(Probe("/visits/overdue.xlsx?unit=B1",
                                                 among(UNIT_B1, 200, 404, 302))),
    # Forms without their required field: 400 for those allowed, 403 for the others who see the customer.
    ("/customers/<int:customer_id>/assign", "POST"): entry(
        Probe(CUSTOMER + "/assign", _customer_post(400, MANAGE, 302), {"assign-manager": ""}),
        Probe("/customers/999999/assign", codes(404, anonymous=302), {"assign-manager": "emp2"})),
    ("/customers/<int:customer_id>/release", "POST"): entry(
        Probe(CUSTOMER + "/release", _customer_post(400, MANAGE, 302), {"release-comment": "x" * 2001})),
    ("/customers/<int:customer_id>/visits", "POST"): entry(
        Probe(CUSTOMER + "/visits", _customer_post(400, SERVE, 302), {"visit-visited_on": ""})),
    # --- API ---
    ("/api/v1/portfolios", "GET"): entry(Probe("/api/v1/portfolios", among(VIEWERS, 200, 403, 401)),
                                         Probe("/api/v1/portfolios?unit=B1", among(UNIT_B1, 200, 404, 401)),
                                         Probe("/api/v1/portfolios?unit=NOWHERE", codes(404, anonymous=401))),
    ("/api/v1/portfolios.xlsx", "GET"): entry(Probe("/api/v1/portfolios.xlsx?unit=B1",
                                                    among(UNIT_B1, 200, 404, 401))),
    ("/api/v1/portfolios/<username>", "GET"): entry(
        Probe("/api/v1/portfolios/{manager}", among(SEES, 200, 404, 401)),
        Probe("/api/v1/portfolios/nobody", codes(404, anonymous=401))),
    ("/api/v1/customers/<int:customer_id>/assignment", "POST"): entry(
        Probe(API_CUSTOMER + "/assignment", _customer_post(400, MANAGE, 401), {})),
    ("/api/v1/customers/<int:customer_id>/release", "POST"): entry(
        Probe(API_CUSTOMER + "/release", _customer_post(400, MANAGE, 401), {"comment": 5})),
    # The list of customers is checked before anyone's authority over them.
    ("/api/v1/assignments", "POST"): entry(Probe("/api/v1/assignments", codes(400, anonymous=401),
                                                 {"customers": [], "manager": "emp2"})),
    ("/api/v1/customers/<int:customer_id>/visits", "POST"): entry(
        Probe(API_CUSTOMER + "/visits", _customer_post(400, SERVE, 401), {"visited_on": "2999-01-01"})),
    ("/api/v1/customers/<int:customer_id>/visits", "GET"): entry(
        Probe(API_CUSTOMER + "/visits", among(SEES, 200, 404, 401)),
        Probe("/api/v1/customers/999999/visits", codes(404, anonymous=401))),
    ("/api/v1/visits/overdue", "GET"): entry(Probe("/api/v1/visits/overdue", among(VIEWERS, 200, 403, 401)),
                                             Probe("/api/v1/visits/overdue?unit=B1",
                                                   among(UNIT_B1, 200, 404, 401))),
}

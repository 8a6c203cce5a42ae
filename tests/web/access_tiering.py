"""The access matrix of the tiering routes (merged into tests/web/access_matrix.py's MATRIX): see that file
for Probe, entry, codes, among and the roles. `build(world)` makes this area's objects in the access
matrix's world (tests/web/test_access_matrix.World) through the engine and returns the placeholders its
probes' URLs and bodies use: {run} a run at B1 in review, {proposal} its pending proposal (decided by an
approver at B1 or above)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from tests.web.access_matrix import UNIT_B1, among, codes, entry, Probe
from tests.web.tiering_data import CORE, IMPORTANT, add_customer
from workflow import clock, tiering
from workflow.models import db
from workflow.models.customers import TierProposal

def build(world) -> dict[str, Any]:
    add_customer("AM-1", "T1", "ordinary", IMPORTANT, manager="emp")      # → important: pending at B1
    add_customer("AM-2", "T2", "ordinary", CORE)                          # → core: auto
    add_customer("AM-3", "T1", "core", CORE)                              # unchanged
    hr = world.person("hr_b1")
    run = tiering.start(hr, hr.roles[0].unit, "2026-H1", today=clock.today())
    db.session.commit()
    pending = db.session.scalar(select(TierProposal.id).where(TierProposal.run_id == run.id,
                                                              TierProposal.state == "pending"))
    return {"run": run.id, "proposal": pending}


# Who may see the B1 run: HR, approvers and admins of B1 or above (appr_t2 at T2 decides none of it).
SEES = UNIT_B1
# Who may decide its pending proposal: an approver at B1 or above.
DECIDES = {"approver_in"}
RUN = "/tiering/{run}"
API = "/api/v1/tiering-runs/{run}"


def _page(yes: int, no: int = 404) -> dict[str, int]:
    return among(SEES, yes, no, 302)


def _api(yes: int, no: int = 404) -> dict[str, int]:
    return among(SEES, yes, no, 401)


MATRIX: dict = {
    # --- pages ---
    ("/tiering/", "GET"): entry(Probe("/tiering/", among({"approver_in", "approver_out", "hr_in", "hr_out",
                                                         "admin"}, 200, 403, 302))),
    ("/tiering/new", "GET"): entry(Probe("/tiering/new", among({"hr_in", "hr_out", "admin"}, 200, 403, 302))),
    # An empty period is 400 for HR; the others may start nothing.
    ("/tiering/new", "POST"): entry(Probe("/tiering/new", among({"hr_in", "hr_out", "admin"}, 400, 403, 302),
                                          {"unit": "B1", "period": ""})),
    ("/tiering/pending", "GET"): entry(Probe("/tiering/pending", codes(200, anonymous=302))),
    ("/tiering/<int:run_id>", "GET"): entry(Probe(RUN, _page(200)),
                                            Probe("/tiering/999999", codes(404, anonymous=302))),
    ("/tiering/<int:run_id>/proposals.xlsx", "GET"): entry(Probe(RUN + "/proposals.xlsx", _page(200))),
    # A rejection without a comment: 400 (the form) for the approver, 403 for the others who see the run.
    ("/tiering/<int:run_id>/proposals/<int:proposal_id>/<decision>", "POST"): entry(
        Probe(RUN + "/proposals/{proposal}/reject", {**_page(403), "approver_in": 422}, {"comment": ""}),
        Probe(RUN + "/proposals/{proposal}/maybe", codes(404, anonymous=302), {"comment": "x"})),
    # Nothing ticked: 400; all one may decide, rejected without a comment: 422.
    ("/tiering/<int:run_id>/decisions", "POST"): entry(
        Probe(RUN + "/decisions", _page(400), {"decision": "approve", "comment": ""}),
        Probe(RUN + "/decisions", _page(422), {"decision": "reject", "comment": "", "scope": "all"})),
    # Determine or cancel with a stale version: 409 for HR, 403 for the others who see the run.
    ("/tiering/<int:run_id>/<action>", "POST"): entry(
        Probe(RUN + "/determine", {**_page(403), "hr_in": 409, "admin": 409}, {"version": "0"}),
        Probe(RUN + "/cancel", {**_page(403), "hr_in": 409, "admin": 409}, {"version": "0", "comment": "x"}),
        Probe(RUN + "/reopen", codes(404, anonymous=302), {"version": "1"})),
    # --- API ---
    ("/api/v1/tiering-runs", "GET"): entry(Probe("/api/v1/tiering-runs", codes(200, anonymous=401))),
    ("/api/v1/tiering-runs", "POST"): entry(
        Probe("/api/v1/tiering-runs", {**among({"hr_in", "admin"}, 422, 404, 401), "approver_in": 403},
              {"unit": "B1", "period": "2026-H2"}),
        Probe("/api/v1/tiering-runs", {**among(SEES, 400, 404, 401), "approver_in": 403},
              {"unit": "B1", "period": ""})),
    ("/api/v1/tiering-runs/<int:run_id>", "GET"): entry(
        Probe(API, _api(200)), Probe("/api/v1/tiering-runs/999999", codes(404, anonymous=401))),
    ("/api/v1/tiering-runs/<int:run_id>/proposals", "GET"): entry(
        Probe(API + "/proposals", _api(200)), Probe(API + "/proposals?state=nothing", _api(400))),
    ("/api/v1/tiering-runs/<int:run_id>/proposals.xlsx", "GET"): entry(
        Probe(API + "/proposals.xlsx", _api(200))),
    ("/api/v1/tiering-runs/<int:run_id>/proposals/<int:proposal_id>/approve", "POST"): entry(
        Probe(API + "/proposals/{proposal}/approve", {**_api(403), "approver_in": 409}, {"version": 0})),
    ("/api/v1/tiering-runs/<int:run_id>/proposals/<int:proposal_id>/reject", "POST"): entry(
        Probe(API + "/proposals/{proposal}/reject", {**_api(403), "approver_in": 422}, {"comment": ""})),
    ("/api/v1/tiering-runs/<int:run_id>/decisions", "POST"): entry(
        Probe(API + "/decisions", _api(422), {"decision": "reject", "comment": ""})),
    ("/api/v1/tiering-runs/<int:run_id>/determine", "POST"): entry(
        Probe(API + "/determine", {**_api(403), "hr_in": 422, "admin": 422})),
    ("/api/v1/tiering-runs/<int:run_id>/cancel", "POST"): entry(
        Probe(API + "/cancel", {**_api(403), "hr_in": 422, "admin": 422}, {"comment": ""})),
}

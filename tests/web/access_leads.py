"""The access matrix of the leads routes (merged into tests/web/access_matrix.py's MATRIX): see that file
for Probe, entry, codes, among and the roles. `build(world)` makes this area's objects in the access
matrix's world (tests/web/test_access_matrix.World) through the engine and returns the placeholders its
probes' URLs and bodies use (e.g. {"customer": 12})."""
from __future__ import annotations

from typing import Any

from tests.web.access_matrix import Probe, among, codes, entry

# The lead lives at T1 and emp owns it (sup_t1 gave it). Who sees it: its owner and the viewers (supervisor,
# approver, HR, admin) at T1 or above. Who follows it (reclassify, win, lose): its owner and whoever may
# reassign it: the sales manager (supervisor under the bank policy: sup_t1) and HR over T1 (admin is HR@HQ).
SEE = {"self", "supervisor", "approver_in", "hr_in", "admin"}
FOLLOW = {"self", "supervisor", "hr_in", "admin"}
REASSIGN = {"supervisor", "hr_in", "admin"}
# Who holds the sales manager's role or HR anywhere: the bulk page lets them through to the leads' checks.
MANAGERS = {"supervisor", "hr_in", "hr_out", "admin"}
# Asking for T4's leads: HR at B3 and the root's admin see the unit; for the others T4 is out of sight.
T4 = {"hr_out", "admin"}


def build(world) -> dict[str, Any]:
    from workflow import leads
    lead = leads.create(world.person("sup_t1"), "杭州某公司 代发工资", world.person("emp").unit, "emp", "A")
    return {"lead": lead.id}


def _on_lead(seen: int, anonymous: int, **by_role: int) -> dict[str, int]:
    """404 for those who do not see the lead, `seen` (or a named status) for those who do."""
    out = among(SEE, seen, 404, anonymous)
    out.update(by_role)
    return out


def _acting(members: set[str], yes: int, anonymous: int) -> dict[str, int]:
    """Those who see the lead and are in `members` get `yes`, the others who see it 403."""
    return _on_lead(403, anonymous, **{role: yes for role in members})


def _pages() -> dict:
    return {
        ("/leads", "GET"): entry(
            Probe("/leads", codes(200, anonymous=302)),
            Probe("/leads?unit=T4", among(T4, 200, 404, 302)),
            Probe("/leads?unit=NOWHERE", codes(404, anonymous=302)),
            Probe("/leads?state=nothing", codes(400, anonymous=302))),
        ("/leads.xlsx", "GET"): entry(
            Probe("/leads.xlsx", codes(200, anonymous=302)),
            Probe("/leads.xlsx?unit=NOWHERE", codes(404, anonymous=302))),
        # Anyone active may open a lead for themselves at their own unit; an empty title is 400.
        ("/leads/new", "GET"): entry(Probe("/leads/new", codes(200, anonymous=302))),
        ("/leads/new", "POST"): entry(
            Probe("/leads/new", codes(400, anonymous=302), {"title": "", "unit": "T1", "lead_class": "A"})),
        ("/leads/<int:lead_id>", "GET"): entry(
            Probe("/leads/{lead}", _on_lead(200, 302)),
            Probe("/leads/999999", codes(404, anonymous=302))),
        # Each action as far as authority, then refused for the body: no such person, no such class, a stale
        # version, no reason for losing.
        ("/leads/<int:lead_id>/<action>", "POST"): entry(
            Probe("/leads/{lead}/reassign", _acting(REASSIGN, 400, 302), {"reassign-owner": "nobody"}),
            Probe("/leads/{lead}/reclassify", _acting(FOLLOW, 400, 302), {"reclassify-lead_class": "Z"}),
            Probe("/leads/{lead}/win", _acting(FOLLOW, 409, 302), {"win-version": "0"}),
            Probe("/leads/{lead}/lose", _acting(FOLLOW, 400, 302), {"lose-comment": ""}),
            Probe("/leads/{lead}/nothing", codes(404, anonymous=302), {}),
            Probe("/leads/999999/win", codes(404, anonymous=302), {})),
        # The bulk reassignment is for sales managers and HR; the lead out of hr_out's sight is 404, the
        # unknown person 400 for those who may reassign it.
        ("/leads/reassign", "POST"): entry(
            Probe("/leads/reassign", {**among(MANAGERS, 400, 403, 302), "hr_out": 404},
                  {"lead": "{lead}", "owner": "nobody"})),
    }


def _api() -> dict:
    # Opening at T1: who neither works at T1 nor sees it gets 404; a viewer who is no sales manager (the
    # approver) 403; the others get past authority and are refused for the empty title: 400.
    create = {**among({"self", "other", "supervisor", "hr_in", "admin"}, 400, 404, 401), "approver_in": 403}
    return {
        ("/api/v1/leads", "GET"): entry(
            Probe("/api/v1/leads", codes(200, anonymous=401)),
            Probe("/api/v1/leads?unit=T4", among(T4, 200, 404, 401)),
            Probe("/api/v1/leads?overdue=maybe", codes(400, anonymous=401))),
        ("/api/v1/leads", "POST"): entry(
            Probe("/api/v1/leads", create, {"unit": "T1", "title": "", "owner": "emp", "lead_class": "A"})),
        ("/api/v1/leads/<int:lead_id>", "GET"): entry(
            Probe("/api/v1/leads/{lead}", _on_lead(200, 401)),
            Probe("/api/v1/leads/999999", codes(404, anonymous=401))),
        ("/api/v1/leads/<int:lead_id>/reassign", "POST"): entry(
            Probe("/api/v1/leads/{lead}/reassign", _acting(REASSIGN, 400, 401), {"owner": "nobody"})),
        ("/api/v1/leads/<int:lead_id>/reclassify", "POST"): entry(
            Probe("/api/v1/leads/{lead}/reclassify", _acting(FOLLOW, 400, 401), {"lead_class": "Z"})),
        ("/api/v1/leads/<int:lead_id>/win", "POST"): entry(
            Probe("/api/v1/leads/{lead}/win", _acting(FOLLOW, 409, 401), {"version": 0})),
        ("/api/v1/leads/<int:lead_id>/lose", "POST"): entry(
            Probe("/api/v1/leads/{lead}/lose", _acting(FOLLOW, 400, 401), {})),
        # Bulk: a malformed list is 400 for all; a lead nobody sees, 404.
        ("/api/v1/leads/reassign", "POST"): entry(
            Probe("/api/v1/leads/reassign", codes(400, anonymous=401), {"leads": [], "owner": "emp"}),
            Probe("/api/v1/leads/reassign", codes(404, anonymous=401), {"leads": [999999], "owner": "emp"})),
        ("/api/v1/leads.xlsx", "GET"): entry(
            Probe("/api/v1/leads.xlsx", codes(200, anonymous=401)),
            Probe("/api/v1/leads.xlsx?unit=T4", among(T4, 200, 404, 401))),
    }


MATRIX: dict = {**_pages(), **_api()}

"""客户分级 — a tiering run, as data: created in `review` with a proposal per customer; the approvers decide
the proposals that need them (approve_tier, reject_tier: recorded on the run's chain, the run stays in
review); HR determines the run (effective: the tiers apply) or cancels it. Not a case kind: the run's machine
is built in workflow/tiering.py, not in RULEBOOKS. Guards and effects are in workflow/tiering.py."""

KIND = "tiering"
CREATED = "review"
STATES = ["review", "effective", "cancelled"]
TERMINAL = ["effective", "cancelled"]

# Who takes each action: HR over the run's unit (authority.can_manage_customers), or a holder of the
# policy's customers.approval role at the proposal's step unit or above (authority.can_decide_tier).
ACTORS = {"determine": "hr", "cancel": "hr", "approve_tier": "approver", "reject_tier": "approver"}
DECISIONS = ["approve_tier", "reject_tier"]     # a proposal's decision: the run's state does not move

TRANSITIONS = [
    {"trigger": "determine", "source": "review", "dest": "effective"},
    {"trigger": "cancel", "source": "review", "dest": "cancelled"},
    {"trigger": "approve_tier", "source": "review", "dest": None},
    {"trigger": "reject_tier", "source": "review", "dest": None},
]

"""加签, 退回 and a committee's votes: actions common to the case kinds, as data. `build()` merges them into
each kind's rulebook (ahead of the kind's own transitions, so that a vote or a signature still awaited is
tried before the decision that moves the case on). Guards and effects live in workflow/signing.py.
"""
from .. import effects as fx
from .. import rules as r
from .. import signing as sg

# 加签: the states whose step's holders decide (duty `decide`), where an assignee may add a signer.
SIGNED = {"promotion": ["qualification_review", "hr_approval"], "demotion": ["review", "hr_approval"],
          "dismissal": ["review", "hr_approval", "final_approval"], "probation": ["hr_review"]}

# The decisions that move a lifecycle case on from a signed state; while an added signer is still to sign
# (or when a signer added before someone signs) they are a signature instead. Promotions have this in their
# own transitions (rules.last_signature, which also does 会签 and committees).
SIGNATURES = {"demotion": {"confirm_grounds": ["review"], "approve": ["hr_approval"]},
              "dismissal": {"confirm_grounds": ["review"], "approve": ["hr_approval"],
                            "final_approve": ["final_approval"]},
              "probation": {"confirm": ["hr_review"]}}

# 退回: per state, the earlier states a case may be sent back to (those its events show it was in). A
# promotion goes back to qualification only: panel scores stand, and a re-entered panel step whose scores
# are all in would move on at once.
SEND_BACK = {"promotion": {"hr_approval": ["qualification_review"]},
             "demotion": {"hr_approval": ["review"]},
             "dismissal": {"hr_approval": ["review"], "final_approval": ["review", "hr_approval"]},
             "probation": {"hr_review": ["evaluation"]}}

# Committee votes (管理小组 with a pass ratio): the promotion states whose step a policy's committee may decide.
VOTED = {"promotion": ["qualification_review", "hr_approval"]}

ACTORS = {"add_signer": "decide", "send_back": "decide"}
DECISIONS = ["send_back"]     # four eyes: who sends a case back from a step has decided on that step


def transitions(kind: str) -> list[dict]:
    """The kind's transitions for these actions (none for a kind without their steps)."""
    out = []
    for state in VOTED.get(kind, ()):
        out.append({"trigger": "reject", "source": state, "dest": None, "prepare": r.require_comment,
                    "conditions": sg.vote_short_of_failure, "before": sg.record_vote})
    for action, states in SIGNATURES.get(kind, {}).items():
        out.append({"trigger": action, "source": states, "dest": None, "conditions": sg.signature_awaited,
                    "before": fx.record_signature})
    if kind in SIGNED:
        out.append({"trigger": "add_signer", "source": SIGNED[kind], "dest": None, "prepare": sg.require_signer,
                    "before": sg.add_signer})
    for source, targets in SEND_BACK.get(kind, {}).items():
        for target in targets:
            out.append({"trigger": "send_back", "source": source, "dest": target,
                        "prepare": [r.require_comment, sg.require_passed_step], "conditions": sg.back_to(target),
                        "before": sg.record_send_back})
    return out


def actors(kind: str) -> dict[str, str]:
    return {a: d for a, d in ACTORS.items() if (a != "send_back" or kind in SEND_BACK)} if kind in SIGNED else {}


def decisions(kind: str) -> list[str]:
    return DECISIONS if kind in SEND_BACK else []

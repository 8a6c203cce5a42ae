"""员工竞聘评价表 on paper: HR over the case enters a panel member's score from the member's paper form
(`score_for`). The score is the member's: they count as having scored, and the four-eyes and conflict rules
that hold for the member's own score hold when HR enters it. The event is HR's and names the member; its
decision is attributed to the member (`decided_by`, read by authority.decided_by), not to HR who typed it."""
from __future__ import annotations

from sqlalchemy import select

from . import clock
from .errors import Invalid, Refused
from .i18n import _l
from .models import db, CaseScore, Person


def require_paper_member(event) -> None:
    """The member named sits on the case's panel, is still due to score and is free of conflict (self,
    declared, another decision on the case)."""
    from .engine import exclusions     # the engine imports the machines, which import this module
    ctx = event.kwargs["ctx"]
    name = ctx.data.get("member")
    if not isinstance(name, str) or not name.strip():
        raise Invalid(_l("member must be the username of the panel member whose paper form this is"),
                      field="member")
    member = db.session.scalar(select(Person).where(Person.username == name.strip()))
    if member is None or not any(m.person_id == member.id for m in ctx.case.panel):
        raise Refused(_l("%(name)s does not sit on the panel of case %(case)s", name=name.strip(),
                         case=ctx.case.id), field="member")
    if ctx.actor is not None and member.id == ctx.actor.id:
        raise Refused(_l("you sit on this panel: give your own score with 'score'"), field="member")
    if any(s.scorer_id == member.id and s.component == "panel" for s in ctx.case.scores):
        raise Refused(_l("%(name)s has already scored this case", name=member.username), field="member")
    why = exclusions(ctx.case, "panel_scoring").get(member.id)
    if why is not None:
        raise Refused(_l("%(name)s may not score this case (%(why)s: the applicant, a declared conflict or another "
                         "decision on it)", name=member.username, why=why), field="member")
    if not any(a.person_id == member.id and a.duty == "panel" for a in ctx.case.assignments):
        raise Refused(_l("%(name)s is not due to score this case now", name=member.username), field="member")
    ctx.data["member"] = member


def record_paper_score(event) -> None:
    """The member's score, with an event that names the member and says HR entered it from paper."""
    ctx = event.kwargs["ctx"]
    member, value = ctx.data["member"], ctx.data["score"]
    ctx.case.scores.append(CaseScore(scorer=member, scorer_id=member.id, component="panel", value=value,
                                     at=clock.now()))
    for a in list(ctx.case.assignments):    # the member's panel duty ends: they have scored
        if a.duty == "panel" and a.person_id == member.id:
            ctx.case.assignments.remove(a)
    ctx.event_data.update(score=value, member=member.username, entered_by=ctx.actor.username, paper_form=True,
                          decision=True, step="panel_scoring", decided_by=member.id)

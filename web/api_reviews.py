"""The annual review part of the JSON API (/api/v1/reviews), on the API blueprint: same auth, same JSON
errors.

`POST /reviews {unit, period, dry_run}` runs the review (HR at the unit or above): 201 with the outcomes when
it stored the run and opened its cases, 200 for a dry run or when the unit and period were reviewed before
(the stored outcomes; nothing new is opened). `GET /reviews?unit=&period=` lists the stored runs.
"""
from __future__ import annotations

from typing import Any

from flask import jsonify, request
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError

from workflow import authority, review
from workflow.errors import Conflict, NotFound
from workflow.models import db, OrgUnit, Person, Review

from .api import body, bp, paginate, unit_by_code, unit_in_body


def review_json(result: review.ReviewResult) -> dict[str, Any]:
    r = result.review
    return {
        "id": r.id if r else None, "unit": result.unit.code, "period": result.period,
        "dry_run": result.dry_run, "stored": result.stored, "refused": result.refused,
        "created_by": (r.created_by.username if r.created_by else "system") if r else None,
        "created_at": r.created_at.isoformat() + "Z" if r else None,
        "policy_version": {"label": r.policy_version.label, "hash": r.policy_version.hash} if r else None,
        "outcomes": result.outcomes,
    }


def stored_json(r: Review) -> dict[str, Any]:
    return review_json(review.ReviewResult(r.unit, r.period, r.outcomes, r, created=False, dry_run=False))


def load_visible_review(review_id: int, viewer: Person) -> Review:
    r = db.session.get(Review, review_id)
    if r is None or not authority.can_view_unit(viewer, r.unit):
        raise NotFound(f"no review {review_id}")
    return r


def run(unit: OrgUnit, period: Any, actor: Person, dry_run: Any) -> review.ReviewResult:
    """Run the review and commit what it stored. When another run of the same unit and period committed
    first (the unique key refuses ours), ours is rolled back and the stored one answers."""
    try:
        result = review.annual_review(unit, period, actor, dry_run=dry_run)
        if result.created:
            db.session.commit()
        return result
    except (IntegrityError, OperationalError) as exc:
        db.session.rollback()
        stored = review.stored_review(unit, review.parse_period(period))
        if stored is None:
            raise Conflict("another change came first; try again") from exc
        return review.ReviewResult(unit, stored.period, stored.outcomes, stored, created=False,
                                   dry_run=dry_run)
    except Exception:
        db.session.rollback()
        raise


@bp.post("/reviews")
def run_review():
    data = body()
    unit = unit_in_body(data)
    result = run(unit, data.get("period"), current_user, data.get("dry_run", False))
    return jsonify(review_json(result)), 201 if result.created else 200


@bp.get("/reviews")
def list_reviews():
    q = select(Review).where(authority.review_visible_filter(current_user)).order_by(Review.id.desc())
    if request.args.get("unit"):
        unit = unit_by_code(request.args["unit"])
        q = q.where(Review.unit_id.in_(select(OrgUnit.id).where(OrgUnit.path.startswith(unit.path))))
    if request.args.get("period"):
        q = q.where(Review.period == request.args["period"].strip())
    return paginate(q, stored_json)


@bp.get("/reviews/<int:review_id>")
def get_review(review_id: int):
    return jsonify(stored_json(load_visible_review(review_id, current_user)))

"""The publicity part of the JSON API (GET /api/v1/publicity), on the API blueprint: same auth, same JSON
errors. The actions of a publicity (object, uphold, overturn) are case actions: POST /cases/ID/ACTION."""
from __future__ import annotations

from flask_login import current_user

from workflow import reports

from .api import bp, paginate
from .publicity import publicity_query
from .serialize import case_json


@bp.get("/publicity")
def list_publicity():
    """The promotions in publicity the caller may see, the window closing soonest first."""
    return paginate(publicity_query(current_user).options(*reports.case_full_options()),
                    lambda c: case_json(c, current_user))

"""The data model, one module per aggregate. `db` is created unbound and bound by the web app."""
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    # Named constraints so that migrations can alter them on every database.
    metadata = MetaData(naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    })


db = SQLAlchemy(model_class=Base)
# Ids are `Integer` columns: 32 bits on PostgreSQL. A larger number names no row, and binding one fails
# (SQLite overflows past 64 bits), so callers refuse it before it reaches a query.
MAX_ID = 2**31 - 1

from .org import OrgUnit, RoleAssignment  # noqa: E402
from .people import Person, ApiToken, Score, GradeHistory  # noqa: E402
from .policies import PolicyVersion, Setting  # noqa: E402
from .cases import Case, CaseAssignee, CaseScore, PanelMember, Conflict  # noqa: E402
from .audit import Event  # noqa: E402
from .rounds import Round, RoundLevel  # noqa: E402
from .absences import Absence  # noqa: E402
from .reviews import Review  # noqa: E402
from .security import LoginAttempt  # noqa: E402
from .jobs import Job, JobFile  # noqa: E402
from .notifications import Notification  # noqa: E402
from .attachments import Attachment  # noqa: E402
from .delegation import Delegation, CaseCopy  # noqa: E402
from .customers import Customer, CustomerTier, TieringRun, TierProposal, Visit, Lead  # noqa: E402

__all__ = [
    "db", "MAX_ID", "OrgUnit", "RoleAssignment", "Person", "ApiToken", "Score", "GradeHistory",
    "PolicyVersion", "Setting", "Case", "CaseAssignee", "CaseScore", "PanelMember", "Conflict", "Event",
    "Round", "RoundLevel", "Absence", "Review", "LoginAttempt", "Job", "JobFile", "Notification",
    "Delegation", "CaseCopy", "Attachment", "Customer", "CustomerTier", "TieringRun", "TierProposal", "Visit",
    "Lead",
]

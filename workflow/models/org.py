from __future__ import annotations

from sqlalchemy import ForeignKey, String, UniqueConstraint, CheckConstraint, select
from sqlalchemy.orm import Mapped, mapped_column, object_session, relationship
from sqlalchemy.orm.util import identity_key

from . import db

ROLES = ("supervisor", "approver", "hr", "panel", "admin", "committee")   # committee: 管理小组 members


class OrgUnit(db.Model):
    """A node of the org tree. `path` is the materialised path of ids ("/1/4/9/") for subtree queries."""
    __tablename__ = "org_units"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(64))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"), index=True)
    path: Mapped[str] = mapped_column(String(1000), index=True, default="")

    parent: Mapped[OrgUnit | None] = relationship(remote_side=[id], back_populates="children")
    children: Mapped[list[OrgUnit]] = relationship(back_populates="parent", order_by="OrgUnit.code")

    def ancestors(self, include_self: bool = True) -> list[OrgUnit]:
        """From this unit (or its parent) up to the root."""
        self._load_path()
        chain, unit = [], (self if include_self else self.parent)
        while unit is not None:
            chain.append(unit)
            unit = unit.parent
        return chain

    def _load_path(self) -> None:
        """Load the units of the materialised path not yet in the session in one query, so that walking up
        by `parent` takes them from the session instead of one query per level."""
        session = object_session(self)
        if session is None or not self.path:
            return
        ids = [int(i) for i in self.path.strip("/").split("/") if i.isdigit()]
        missing = [i for i in ids if i != self.id and identity_key(OrgUnit, i) not in session.identity_map]
        if missing:
            with session.no_autoflush:   # held here: the session keeps only weak references
                self._path_units = session.scalars(select(OrgUnit).where(OrgUnit.id.in_(missing))).all()

    def contains(self, other: OrgUnit | None) -> bool:
        return other is not None and other.path.startswith(self.path)

    def __repr__(self) -> str:
        return f"<OrgUnit {self.code}>"


class RoleAssignment(db.Model):
    """A role held at a unit; it covers the unit's whole subtree."""
    __tablename__ = "role_assignments"
    __table_args__ = (
        UniqueConstraint("person_id", "role", "unit_id", name="uq_role_assignments_person_role_unit"),
        CheckConstraint("role IN ('supervisor','approver','hr','panel','admin','committee')", name="role_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)

    person = relationship("Person", back_populates="roles")
    unit: Mapped[OrgUnit] = relationship()

    def __str__(self) -> str:
        return f"{self.role}@{self.unit.code}"

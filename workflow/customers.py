"""Customers (客户): the active policy's customer section, and creating, editing and importing customers.
Every change is one transaction with its event on the customer's audit chain ("customer:ID")."""
from __future__ import annotations

from . import engine
from .customer_policy import CustomerPolicy
from .errors import Refused
from .i18n import _l
from .models import PolicyVersion


def active() -> tuple[PolicyVersion, CustomerPolicy]:
    """The active policy version and its customer section; Refused when the policy has none."""
    pv, pol = engine.active_policy()
    if pol.customers is None:
        raise Refused(_l("the active policy (%(policy)s) has no customers section: customer tiering, portfolios "
                         "and leads are not in use", policy=pol.label))
    return pv, pol.customers

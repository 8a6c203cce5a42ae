"""Pages: customers (see docs/customers.md)."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("customers", __name__)

"""Pages: portfolios (see docs/portfolios.md)."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("portfolios", __name__)

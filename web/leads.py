"""Pages: leads (see docs/leads.md)."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("leads", __name__)

"""Pages: tiering (see docs/tiering.md)."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("tiering", __name__)

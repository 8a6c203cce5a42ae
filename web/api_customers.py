"""The customers part of the JSON API (/api/v1), on the API blueprint: same auth, same JSON errors."""
from __future__ import annotations

from .api import bp  # noqa: F401

"""The leads part of the JSON API (/api/v1), on the API blueprint: same auth, same JSON errors."""
from __future__ import annotations

from typing import Any

from .api import bp  # noqa: F401


# --- the OpenAPI description of these routes (merged by web/openapi.py) ------------------------------------

def openapi_paths() -> dict[str, Any]:
    return {}


def openapi_schemas() -> dict[str, Any]:
    return {}


def openapi_bodies() -> dict[str, Any]:
    return {}

"""The access matrix of the tiering routes (merged into tests/web/access_matrix.py's MATRIX): see that file
for Probe, entry, codes, among and the roles. `build(world)` makes this area's objects in the access
matrix's world (tests/web/test_access_matrix.World) through the engine and returns the placeholders its
probes' URLs and bodies use (e.g. {"customer": 12})."""
from __future__ import annotations

from typing import Any


def build(world) -> dict[str, Any]:
    return {}


MATRIX: dict = {}

from __future__ import annotations

import json
from pathlib import Path

import pytest

VECTORS_DIR = Path(__file__).resolve().parents[1] / "vectors" / "lwm2m"


@pytest.fixture(scope="session")
def vectors() -> dict[str, dict[str, object]]:
    """The vectors of ``vectors.json`` (see its README)."""
    return json.loads((VECTORS_DIR / "vectors.json").read_text())

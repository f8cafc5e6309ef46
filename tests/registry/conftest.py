"""Registry fixtures: a registry URL on a real SQLite file and on real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support import pg


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL confined to a fresh schema."""
    with pg.fresh_schema() as url:
        yield url

"""Shared PostgreSQL helpers for the registry and line tests (a fresh schema per use)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import psycopg
import pytest

ENV = "PROVKIT_TEST_POSTGRES_URL"


def base_url() -> str | None:
    """The test server URL in psycopg 3 form, or None when the variable is unset."""
    url = os.environ.get(ENV)
    if not url:
        return None
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain) :]
    return url


def _libpq(url: str) -> str:
    return "postgresql://" + url.split("://", 1)[1]


@contextmanager
def fresh_schema() -> Iterator[str]:
    """Create an empty schema and yield a URL whose search_path is that schema; drop it after.

    Skips when the variable is unset; fails (connection error) when it is set but the
    server is unreachable.
    """
    url = base_url()
    if url is None:
        pytest.skip(f"{ENV} is not set")
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(_libpq(url), autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in url else "?"
    try:
        yield f"{url}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with psycopg.connect(_libpq(url), autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')

"""A SQLite registry file left at an older migration, as a station running an older provkit leaves it."""

from __future__ import annotations

from pathlib import Path


def registry_at_revision(path: Path, revision: str) -> None:
    """Create the registry ``path`` and upgrade it only as far as Alembic ``revision``."""
    from alembic import command
    from alembic.config import Config

    from provkit.registry.engine import MIGRATIONS_DIR, create_registry_engine

    engine = create_registry_engine(path)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
    engine.dispose()

"""Registry attempts, uniqueness among provisioned devices, reprovisioning and stats."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect

from provkit.errors import DuplicateIdentityError, RegistryError
from provkit.registry import AttemptState, NewAttempt, Registry


def _provision(registry: Registry, endpoint: str, serial: str, *, reprovision: bool = False) -> int:
    (attempt_id,) = registry.record_attempts(None, [NewAttempt(endpoint, serial, key_mode="factory")])
    registry.mark_sending(attempt_id, reprovision=reprovision)
    registry.update_attempt(attempt_id, AttemptState.INJECTED, return_status=0, info_message="ok")
    registry.mark_verified(attempt_id, reprovision=reprovision, device_cert_sha256="ab" * 32)
    return attempt_id


def test_open_creates_schema_at_head(registry_url: str) -> None:
    """Opening a registry creates every table and records the Alembic revision."""
    with Registry.open(registry_url, station_id="s1") as registry:
        names = set(inspect(registry.engine).get_table_names())
    assert {"attempts", "provisioned", "sequences", "allocations", "pool_entries", "alembic_version"} <= names


def test_migrations_build_exactly_the_model_schema(registry_url: str) -> None:
    """The Alembic migrations, not the model, create the schema, and they agree column for column."""
    from alembic.autogenerate import compare_metadata
    from alembic.config import Config
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from provkit.registry.engine import MIGRATIONS_DIR
    from provkit.registry.schema import metadata

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(config).get_current_head()  # raises if the history forks
    with Registry.open(registry_url, station_id="s") as registry, registry.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert context.get_current_revision() == head
        assert compare_metadata(context, metadata) == []


def test_upgrade_keeps_attempts_and_adds_the_ca_key(tmp_path: Path) -> None:
    """A registry made before CA keys were recorded keeps its attempts; they read ca_key None."""
    from alembic.script import ScriptDirectory

    from provkit.registry.engine import MIGRATIONS_DIR
    from support.migrations import registry_at_revision

    before = ScriptDirectory(str(MIGRATIONS_DIR)).get_revision("0005_ca_key").down_revision
    assert isinstance(before, str)
    path = tmp_path / "old.sqlite"
    registry_at_revision(path, before)
    with Registry.open(path, station_id="old", migrate=False) as registry:
        (old,) = registry.record_attempts(None, [NewAttempt("ep-old", "sn-old")])
    with Registry.open(path, station_id="new") as registry:
        assert registry.get_attempt(old).ca_key is None
        registry.update_attempt(old, AttemptState.PREPARED, ca_key="sha256:" + "ab" * 32)
        assert registry.get_attempt(old).ca_key == "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u@h:5432/db", "postgresql+psycopg://u@h:5432/db"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("/var/lib/r.sqlite", "sqlite:////var/lib/r.sqlite"),
    ],
)
def test_plain_postgresql_urls_use_psycopg_3(given: str, expected: str) -> None:
    """``postgresql://`` (what libpq users write) is driven by psycopg 3, not psycopg2."""
    from provkit.registry.engine import normalise_url

    assert normalise_url(given) == expected


@pytest.mark.integration
@pytest.mark.postgres
def test_registry_opens_from_a_plain_postgresql_url(pg_url: str) -> None:
    """A ``postgresql://`` URL reaches the real server and migrates it."""
    plain = "postgresql://" + pg_url.split("://", 1)[1]
    with Registry.open(plain, station_id="s") as registry:
        assert registry.engine.dialect.driver == "psycopg"
        _provision(registry, "ep-1", "sn-1")
        assert registry.stats().provisioned == 1


def test_open_twice_is_idempotent(registry_url: str) -> None:
    """A second open of a migrated registry keeps the data."""
    with Registry.open(registry_url, station_id="s1") as registry:
        _provision(registry, "ep-1", "sn-1")
    with Registry.open(registry_url, station_id="s1") as registry:
        assert registry.stats().provisioned == 1


def test_attempt_lifecycle_records_every_field(registry_url: str) -> None:
    """An attempt moves through the states and keeps its result fields."""
    with Registry.open(registry_url, station_id="line-3") as registry:
        attempt_id = _provision(registry, "ep-1", "sn-1")
        attempt = registry.get_attempt(attempt_id)
    assert attempt.state is AttemptState.VERIFIED
    assert attempt.station_id == "line-3"
    assert attempt.tries == 1
    assert attempt.return_status == 0
    assert attempt.device_cert_sha256 == "ab" * 32
    assert attempt.provisioned_at is not None
    assert attempt.to_json()["state"] == "verified"


def test_second_provisioning_of_endpoint_is_refused(registry_url: str) -> None:
    """Provisioning an endpoint name again without reprovision fails and records why."""
    with Registry.open(registry_url, station_id="s") as registry:
        first = _provision(registry, "ep-1", "sn-1")
        with pytest.raises(DuplicateIdentityError) as caught:
            _provision(registry, "ep-1", "sn-2")
        assert caught.value.code == 4001
        failed = registry.find(endpoint_name="ep-1", state=AttemptState.FAILED)
        assert len(failed) == 1 and "already provisioned" in (failed[0].error_message or "")
        # Refused at its sending mark: the provisioned identity is still reserved.
        assert failed[0].tries == 0 and f"attempt {first}" in (failed[0].error_message or "")
        assert registry.get_attempt(first).state is AttemptState.VERIFIED
        assert registry.stats().provisioned == 1


def test_verdict_for_a_provisioned_identity_is_refused_and_keeps_the_answer(registry_url: str) -> None:
    """An answer whose identity is provisioned elsewhere (an attempt sent before reservations
    existed) is refused at verification, and the device's own result is kept on its attempt."""
    with Registry.open(registry_url, station_id="s") as registry:
        first = _provision(registry, "ep-1", "sn-1")
        (late,) = registry.record_attempts(None, [NewAttempt("ep-1", "sn-2")])
        registry.update_attempt(late, AttemptState.INJECTED, return_status=0, info_message="ok")
        with pytest.raises(DuplicateIdentityError):
            registry.mark_verified(late, device_cert_sha256="ab" * 32)
        failed = registry.get_attempt(late)
        assert failed.state is AttemptState.FAILED and "already provisioned" in (failed.error_message or "")
        assert failed.device_cert_sha256 == "ab" * 32 and failed.return_status == 0
        assert registry.get_attempt(first).state is AttemptState.VERIFIED


def test_serial_number_is_unique_too(registry_url: str) -> None:
    """A different endpoint with an already provisioned serial number is refused."""
    with Registry.open(registry_url, station_id="s") as registry:
        _provision(registry, "ep-1", "sn-1")
        with pytest.raises(DuplicateIdentityError):
            _provision(registry, "ep-2", "sn-1")


def test_reprovision_supersedes_the_old_attempt(registry_url: str) -> None:
    """With reprovision the new attempt holds the identity and the old one is superseded."""
    with Registry.open(registry_url, station_id="s") as registry:
        old = _provision(registry, "ep-1", "sn-1")
        new = _provision(registry, "ep-1", "sn-1", reprovision=True)
        assert registry.get_attempt(old).state is AttemptState.SUPERSEDED
        assert registry.get_attempt(old).superseded_by_id == new
        assert registry.provisioned_owner("ep-1", "x").id == new  # type: ignore[union-attr]
        stats = registry.stats()
    assert stats.provisioned == 1
    assert stats.by_state == {"superseded": 1, "verified": 1}
    assert stats.by_station == {"s": 1}


def test_verifying_twice_is_harmless(registry_url: str) -> None:
    """Marking the same attempt verified twice keeps one provisioned record."""
    with Registry.open(registry_url, station_id="s") as registry:
        attempt_id = _provision(registry, "ep-1", "sn-1")
        registry.mark_verified(attempt_id)
        assert registry.stats().provisioned == 1


def test_batch_attempts_returns_latest_per_slot(registry_url: str) -> None:
    """The batch journal view gives the newest attempt of each slot."""
    with Registry.open(registry_url, station_id="s") as registry:
        registry.create_batch("b1", "devices.csv")
        registry.create_batch("b1", "devices.csv")
        first, other = registry.record_attempts(
            "b1", [NewAttempt("ep-1", "sn-1", slot="1"), NewAttempt("ep-2", "sn-2", slot="2")]
        )
        registry.mark_failed(first, 1012, "timeout")
        (retry,) = registry.record_attempts("b1", [NewAttempt("ep-1", "sn-1", slot="1", supersedes_id=first)])
        latest = registry.batch_attempts("b1")
        assert registry.get_attempt(first).superseded_by_id == retry
    assert latest["1"].id == retry and latest["2"].id == other


def test_unknown_attempt_is_a_registry_error(tmp_path: object) -> None:
    """Asking for a missing attempt raises RegistryError, not a crash."""
    with Registry.open(f"{tmp_path}/r.sqlite", station_id="s") as registry, pytest.raises(RegistryError):
        registry.get_attempt(12345)


def test_unsupported_url_is_refused() -> None:
    """A registry URL for an unsupported database is refused with code 4000."""
    with pytest.raises(RegistryError) as caught:
        Registry.open("mysql://x@y/z")
    assert caught.value.code == 4000


def test_missing_directory_is_refused(tmp_path: object) -> None:
    """A SQLite path in a directory that does not exist is a clear RegistryError."""
    with pytest.raises(RegistryError, match="does not exist"):
        Registry.open(f"{tmp_path}/no/such/dir/r.sqlite")


@pytest.mark.integration
def test_unreachable_postgres_is_a_registry_error() -> None:
    """A PostgreSQL URL with nothing listening fails with RegistryError."""
    with pytest.raises(RegistryError, match="unavailable"):
        Registry.open("postgresql://postgres@127.0.0.1:1/none?connect_timeout=2")


def test_registry_file_removed_mid_batch_is_reported(tmp_path: object) -> None:
    """Writes to a registry whose directory vanished raise RegistryError."""
    import shutil
    from pathlib import Path

    folder = Path(str(tmp_path)) / "reg"
    folder.mkdir()
    registry = Registry.open(folder / "r.sqlite", station_id="s")
    try:
        registry.engine.dispose()
        shutil.rmtree(folder)
        with pytest.raises(RegistryError):
            registry.record_attempts(None, [NewAttempt("ep", "sn")])
    finally:
        registry.close()


def test_postgresql_without_its_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """psycopg is the postgres extra: without it a PostgreSQL URL is a clear RegistryError."""
    import sys

    from provkit.errors import RegistryError
    from provkit.registry.engine import create_registry_engine

    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(RegistryError, match="needs the psycopg driver") as caught:
        create_registry_engine("postgresql://postgres@127.0.0.1:5432/test")
    assert caught.value.hint is not None and "provkit[postgres]" in caught.value.hint

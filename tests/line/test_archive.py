"""Private keys at rest on the line: bundle files 0600 in a 0700 directory, sealed or removed when over."""

from __future__ import annotations

import stat
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from provkit.crypto.keys import generate_p256, public_key_pem
from provkit.errors import BatchError
from provkit.line.archive import (
    ARCHIVE_PRIVATE_KEY,
    ARCHIVE_PUBLIC_KEY,
    BundleArchive,
    SettledBundles,
    load_archive_private_key,
    sealed_path,
    unseal_bundle,
    write_sealed_copy,
)
from provkit.line.batch import Batch, BatchOptions
from provkit.line.farm import DeviceFarm
from provkit.line.layout import BatchDir
from provkit.registry import AttemptState, Registry
from provkit.transport.link import LINE_LINK_SETTINGS
from provkit.wire.bundle import decode_bundle
from support.cli import run_cli

pytestmark = pytest.mark.integration


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _options(home: Path, **kw: object) -> BatchOptions:
    settings = replace(LINE_LINK_SETTINGS, timeout_s=10, connect_timeout_s=2, retries=0, retry_delay_s=0.01)
    base: dict[str, object] = {"home_dir": home, "workers": 1, "concurrency": 4, "inject": settings}
    base.update(kw)
    return BatchOptions(**base)  # type: ignore[arg-type]


def _private_keys(bundle: bytes) -> list[bytes]:
    return [k.data for k in decode_bundle(bundle).keys if k.type == "ECCPrivate"]


def test_prepared_bundles_are_owner_only_and_sealed_once_verified(
    fcu_home: Path, farm_factory: Callable[..., DeviceFarm], devices_csv: Callable[..., Path], tmp_path: Path
) -> None:
    farm = farm_factory(4)
    csv_path = devices_csv(tmp_path / "devices.csv", farm.addresses())
    out = tmp_path / "out"
    with Registry.open(tmp_path / "r.sqlite", station_id="s") as registry:
        batch = Batch.open(out, registry, csv_path, _options(fcu_home))
        assert batch.prepare().ok
        layout = BatchDir(out)
        assert _mode(layout.bundles) == 0o700
        clear = sorted(layout.bundles.glob("*.cbor"))
        assert len(clear) == 4 and all(_mode(p) == 0o600 for p in clear)
        before = {p.name: p.read_bytes() for p in clear}
        assert all(_private_keys(data) for data in before.values())  # by_tool: keys in the bundle

        assert Batch.open(out, registry, None, _options(fcu_home)).run().ok
        attempts = registry.batch_attempts(batch.batch_id).values()
        assert {a.state for a in attempts} == {AttemptState.VERIFIED}

    assert list(layout.bundles.glob("*.cbor")) == []
    key = load_archive_private_key(fcu_home / "keystore" / ARCHIVE_PRIVATE_KEY)
    assert _mode(fcu_home / "keystore" / ARCHIVE_PRIVATE_KEY) == 0o600
    for attempt in attempts:
        path = layout.bundle(attempt.id, attempt.endpoint_name)
        sealed = sealed_path(path)
        assert _mode(sealed) == 0o600
        blob = sealed.read_bytes()
        for private in _private_keys(before[path.name]):
            assert private not in blob  # the key is not in the file in clear
        assert unseal_bundle(sealed, key) == before[path.name]


def test_remove_mode_leaves_no_bundle_and_a_verify_step_settles_injected_ones(
    fcu_home: Path, farm_factory: Callable[..., DeviceFarm], devices_csv: Callable[..., Path], tmp_path: Path
) -> None:
    farm = farm_factory(3)
    csv_path = devices_csv(tmp_path / "devices.csv", farm.addresses())
    out = tmp_path / "out"
    options = _options(fcu_home, settled_bundles=SettledBundles.REMOVE)
    with Registry.open(tmp_path / "r.sqlite", station_id="s") as registry:
        assert Batch.open(out, registry, csv_path, options).inject().counts() == {"injected": 3}
        assert len(list(BatchDir(out).bundles.glob("*.cbor"))) == 3  # not judged yet: still needed
        assert Batch.open(out, registry, None, options).verify().ok
    assert list(BatchDir(out).bundles.iterdir()) == []


def test_an_existing_wide_bundle_directory_is_narrowed_on_resume(
    fcu_home: Path, farm_factory: Callable[..., DeviceFarm], devices_csv: Callable[..., Path], tmp_path: Path
) -> None:
    farm = farm_factory(2)
    csv_path = devices_csv(tmp_path / "devices.csv", farm.addresses())
    out = tmp_path / "out"
    with Registry.open(tmp_path / "r.sqlite", station_id="s") as registry:
        assert Batch.open(out, registry, csv_path, _options(fcu_home)).prepare().ok
        BatchDir(out).bundles.chmod(0o755)  # as an older provkit left it
        assert Batch.open(out, registry, None, _options(fcu_home)).run().ok
    assert _mode(BatchDir(out).bundles) == 0o700


def test_sealing_survives_a_kill_between_seal_and_delete_and_needs_only_the_public_key(
    tmp_path: Path,
) -> None:
    key = generate_p256()
    public = tmp_path / "archive.pub"
    public.write_bytes(public_key_pem(key))
    keystore = tmp_path / "keystore"
    archive = BundleArchive.open(keystore, public_key_file=public)
    assert not keystore.exists()  # a given public key: no key pair is made
    bundle = tmp_path / "00000007-dev.cbor"
    bundle.write_bytes(b"bundle with a private key")
    assert archive.settle(bundle) and not bundle.exists()
    first = sealed_path(bundle).read_bytes()
    bundle.write_bytes(b"bundle with a private key")  # killed before the delete: both files there
    assert archive.settle(bundle) and not bundle.exists()
    assert sealed_path(bundle).read_bytes() == first  # the complete sealed copy is kept
    assert unseal_bundle(sealed_path(bundle), key) == b"bundle with a private key"
    other = tmp_path / "00000008-dev.cbor"
    other.write_bytes(b"sealed where it was written")
    write_sealed_copy(other, other.read_bytes(), archive.public_key_der or b"")  # as a prepare worker does
    made = sealed_path(other).read_bytes()
    assert archive.settle(other) and not other.exists() and sealed_path(other).read_bytes() == made
    assert unseal_bundle(sealed_path(other), key) == b"sealed where it was written"
    assert not archive.settle(bundle)  # nothing in clear any more


def test_a_sealed_bundle_opens_only_with_its_key_and_name(tmp_path: Path) -> None:
    archive = BundleArchive.open(tmp_path / "keystore")
    assert {p.name for p in (tmp_path / "keystore").iterdir()} == {ARCHIVE_PRIVATE_KEY, ARCHIVE_PUBLIC_KEY}
    bundle = tmp_path / "00000001-a.cbor"
    bundle.write_bytes(b"secret")
    archive.settle(bundle)
    with pytest.raises(BatchError, match="does not open"):
        unseal_bundle(sealed_path(bundle), generate_p256())
    renamed = tmp_path / "00000002-b.cbor.sealed"
    sealed_path(bundle).rename(renamed)
    key = load_archive_private_key(tmp_path / "keystore" / ARCHIVE_PRIVATE_KEY)
    with pytest.raises(BatchError, match="does not open"):
        unseal_bundle(renamed, key)
    with pytest.raises(BatchError, match="not a sealed bundle"):
        unseal_bundle(tmp_path / "keystore" / ARCHIVE_PUBLIC_KEY, key)


def test_an_unusable_archive_key_is_a_batch_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pub"
    bad.write_text("not a key")
    with pytest.raises(BatchError, match="archive key") as caught:
        BundleArchive.open(tmp_path, public_key_file=bad)
    assert caught.value.code == BatchError.default_code


def test_batch_unseal_command_writes_the_bundle_owner_only(tmp_path: Path) -> None:
    archive = BundleArchive.open(tmp_path / "keystore")
    bundle = tmp_path / "00000003-c.cbor"
    bundle.write_bytes(b"clear bundle")
    archive.settle(bundle)
    out = tmp_path / "clear.cbor"
    private = tmp_path / "keystore" / ARCHIVE_PRIVATE_KEY
    result = run_cli("batch", "unseal", str(sealed_path(bundle)), "--key", str(private), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == b"clear bundle" and _mode(out) == 0o600
    assert "private key" in result.output

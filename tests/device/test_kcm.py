"""KCM storage: both backends, name rules, namespaces, chains, reset and encryption at rest."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from provkit.codes import KcmStatus
from provkit.device.kcm import ItemType, Kcm
from provkit.device.storage import MemoryStorage, SqliteStorage, open_storage
from provkit.errors import ItemExistsError, ItemNotFoundError, StorageError


@pytest.fixture(params=["memory", "sqlite"])
def kcm(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Kcm]:
    backend = MemoryStorage() if request.param == "memory" else SqliteStorage(tmp_path / "k.sqlite")
    yield Kcm(backend)
    backend.close()


def _chain(pki: Any, length: int) -> list[bytes]:
    """Build a chain leaf-first where each certificate is signed by the next."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    from provkit.crypto.x509 import certificate_der

    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(length)]
    names = [x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, f"c{i}")]) for i in range(length)]
    ders = []
    for i in range(length):
        issuer = min(i + 1, length - 1)
        cert = (
            x509.CertificateBuilder()
            .subject_name(names[i])
            .issuer_name(names[issuer])
            .public_key(keys[i].public_key())
            .serial_number(i + 1)
            .not_valid_before(pki.now)
            .not_valid_after(pki.now.replace(year=pki.now.year + 20))
            .sign(keys[issuer], hashes.SHA256())
        )
        ders.append(certificate_der(cert))
    return ders


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("", KcmStatus.INVALID_PARAMETER),
        ("a" * 101, KcmStatus.FILE_NAME_TOO_LONG),
        ("has space", KcmStatus.FILE_NAME_INVALID),
        ("slash/name", KcmStatus.FILE_NAME_INVALID),
        ("ümlaut", KcmStatus.FILE_NAME_INVALID),
    ],
)
def test_name_rules(kcm: Kcm, name: str, status: KcmStatus) -> None:
    """Names must be 1-100 characters of A-Z a-z 0-9 . - _."""
    with pytest.raises(StorageError) as info:
        kcm.item_store(name, ItemType.CONFIG, b"x")
    assert info.value.kcm_status is status


def test_names_accept_full_alphabet_and_100_chars(kcm: Kcm) -> None:
    """A 100-character name using every allowed class is stored and read back."""
    name = ("Az09._-" * 15)[:100]
    kcm.item_store(name, ItemType.CONFIG, b"v")
    assert kcm.item_get(name, ItemType.CONFIG) == b"v"


def test_namespaces_are_separate(kcm: Kcm, pki: Any) -> None:
    """The same name may exist once per item type; each type reads its own data."""
    key_der, cert_der = pki.device()
    kcm.item_store("same", ItemType.CONFIG, b"cfg")
    kcm.item_store("same", ItemType.PRIVATE_KEY, key_der)
    kcm.item_store("same", ItemType.CERTIFICATE, cert_der)
    kcm.item_store("same", ItemType.SYMMETRIC_KEY, b"k" * 16)
    assert kcm.item_get("same", ItemType.CONFIG) == b"cfg"
    assert kcm.item_get("same", ItemType.PRIVATE_KEY) == key_der
    assert kcm.item_get("same", ItemType.CERTIFICATE) == cert_der
    assert not kcm.item_exists("same", ItemType.PUBLIC_KEY)
    with pytest.raises(ItemExistsError):
        kcm.item_store("same", ItemType.CONFIG, b"again")
    with pytest.raises(ItemNotFoundError):
        kcm.item_get("same", ItemType.PUBLIC_KEY)


def test_der_checks(kcm: Kcm, pki: Any) -> None:
    """Keys and certificates must be ones the device's Mbed TLS takes; empty data is refused.

    Every private key the device cannot read is "Public key format invalid" (Mbed TLS folds
    them into one error); PEM text is an invalid parameter; public keys keep their fault.
    """
    from provkit.crypto.keys import private_key_der, public_key_der

    p384 = ec.generate_private_key(ec.SECP384R1())
    cases = [
        (ItemType.PRIVATE_KEY, b"\x30\x00", KcmStatus.CRYPTO_PK_KEY_INVALID_FORMAT),
        (ItemType.PRIVATE_KEY, private_key_der(p384), KcmStatus.CRYPTO_PK_KEY_INVALID_FORMAT),
        (ItemType.PRIVATE_KEY, b"-----BEGIN EC PRIVATE KEY-----", KcmStatus.INVALID_PARAMETER),
        (ItemType.PUBLIC_KEY, b"-----BEGIN PUBLIC KEY-----", KcmStatus.INVALID_PARAMETER),
        (ItemType.PUBLIC_KEY, b"-----BEGIN", KcmStatus.CRYPTO_PARSING_DER_PUBLIC_KEY),
        (ItemType.PUBLIC_KEY, b"\x30\x00", KcmStatus.CRYPTO_PARSING_DER_PUBLIC_KEY),
        (ItemType.PUBLIC_KEY, public_key_der(p384), KcmStatus.CRYPTO_UNSUPPORTED_CURVE),
        (ItemType.CERTIFICATE, b"\x30\x82\x00", KcmStatus.CRYPTO_PARSING_DER_CERT),
        (ItemType.CERTIFICATE, b"", KcmStatus.ITEM_IS_EMPTY),
    ]
    for item_type, data, status in cases:
        with pytest.raises(StorageError) as info:
            kcm.item_store("x", item_type, data)
        assert info.value.kcm_status is status
    kcm.item_store("empty.config", ItemType.CONFIG, b"")
    assert kcm.item_get("empty.config", ItemType.CONFIG) == b""


@pytest.mark.parametrize("length", [1, 2, 3, 4, 5])
def test_chains_of_one_to_five(kcm: Kcm, pki: Any, length: int) -> None:
    """Chains of 1-5 certificates whose signatures link up are stored and read back in order."""
    ders = _chain(pki, length)
    kcm.cert_chain_store("chain", ders)
    assert kcm.cert_chain_get("chain") == ders
    assert kcm.item_get("chain", ItemType.CERTIFICATE) == ders[0]
    assert kcm.list_items()[0].chain_length == length


def test_chain_signature_and_length_checks(kcm: Kcm, pki: Any) -> None:
    """A link not signed by its successor, or 0 / 6 certificates, is refused without storing."""
    ders = _chain(pki, 3)
    with pytest.raises(StorageError) as info:
        kcm.cert_chain_store("bad", [ders[0], ders[2]])
    assert info.value.kcm_status is KcmStatus.CERTIFICATE_CHAIN_VERIFICATION_FAILED
    for bad in ([], ders * 2):
        with pytest.raises(StorageError) as info:
            kcm.cert_chain_store("bad", bad)
        assert info.value.kcm_status is KcmStatus.INVALID_NUM_OF_CERT_IN_CHAIN
    assert kcm.list_items() == []


def test_transaction_rolls_back_everything(kcm: Kcm) -> None:
    """An exception inside a transaction undoes items, backups and RBP writes; nesting works."""
    kcm.item_store("keep", ItemType.CONFIG, b"1")
    with pytest.raises(RuntimeError), kcm.transaction():
        kcm.item_store("gone", ItemType.CONFIG, b"2")
        kcm.rbp_set("entropy", b"e" * 48)
        with kcm.transaction():
            kcm.item_store("inner", ItemType.CONFIG, b"3")
        raise RuntimeError("boom")
    assert [i.name for i in kcm.list_items()] == ["keep"]
    assert kcm.rbp_get("entropy") is None
    with kcm.transaction():
        with pytest.raises(ValueError), kcm.transaction():
            kcm.item_store("inner", ItemType.CONFIG, b"3")
            raise ValueError
        kcm.item_store("outer", ItemType.CONFIG, b"4")
    assert [i.name for i in kcm.list_items()] == ["keep", "outer"]


def test_backup_and_factory_reset(kcm: Kcm) -> None:
    """Factory reset deletes non-factory items and restores factory items from backup."""
    kcm.item_store("factory", ItemType.CONFIG, b"f")
    kcm.item_store("runtime", ItemType.CONFIG, b"r", is_factory=False)
    kcm.item_store("secret", ItemType.SYMMETRIC_KEY, b"s" * 16)
    kcm.item_delete("factory", ItemType.CONFIG)
    kcm.item_delete("secret", ItemType.SYMMETRIC_KEY)
    kcm.factory_reset()
    assert [(i.name, i.is_factory) for i in kcm.list_items()] == [("secret", True), ("factory", True)]
    assert kcm.item_get("secret", ItemType.SYMMETRIC_KEY) == b"s" * 16
    kcm.erase()
    assert kcm.list_items() == []


def test_private_keys_never_in_clear_on_disk(tmp_path: Path, pki: Any) -> None:
    """The SQLite files never contain private key, symmetric key or ROT bytes in clear."""
    from cryptography.hazmat.primitives.serialization import load_der_private_key

    path = tmp_path / "k.sqlite"
    kcm = Kcm(SqliteStorage(path))
    key_der, _ = pki.device()
    key = load_der_private_key(key_der, None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    kcm.item_store("k", ItemType.PRIVATE_KEY, key_der)
    kcm.item_store("s", ItemType.SYMMETRIC_KEY, b"SYMMETRIC-SECRET-0123456789")
    kcm.rbp_set("rot", b"ROOT-OF-TRUST-16")
    kcm.backend.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if not p.name.endswith(".secret"))
    for secret in (scalar, key_der, b"SYMMETRIC-SECRET", b"ROOT-OF-TRUST-16"):
        assert secret not in raw
    again = Kcm(SqliteStorage(path))
    assert again.item_get("k", ItemType.PRIVATE_KEY) == key_der
    assert again.rbp_get("rot") == b"ROOT-OF-TRUST-16"
    again.backend.close()


def test_secret_file_mode_and_wrong_secret(tmp_path: Path) -> None:
    """The secret file is created 0600; another secret gives a clear FILE_CORRUPTED error."""
    path = tmp_path / "k.sqlite"
    backend = SqliteStorage(path)
    Kcm(backend).item_store("k", ItemType.SYMMETRIC_KEY, b"x" * 16)
    backend.close()
    secret = tmp_path / "k.sqlite.secret"
    assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600
    secret.write_bytes(bytes(32))
    with pytest.raises(StorageError) as info:
        Kcm(SqliteStorage(path))
    assert info.value.kcm_status is KcmStatus.FILE_CORRUPTED
    assert "secret" in str(info.value)
    secret.write_bytes(b"short")
    with pytest.raises(StorageError, match="32"):
        Kcm(SqliteStorage(path))


def test_open_storage_specs(tmp_path: Path) -> None:
    """``:memory:`` selects memory storage, anything else a SQLite file."""
    assert isinstance(open_storage(":memory:"), MemoryStorage)
    backend = open_storage(tmp_path / "x.sqlite")
    assert isinstance(backend, SqliteStorage)
    backend.close()

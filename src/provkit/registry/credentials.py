"""PSK credentials the LwM2M server accepts, recorded when a device is provisioned.

A station that writes a PSK into a device (an LwM2M Security instance in PSK mode)
records the identity and key here; the server looks the identity up during the DTLS
handshake. Keys are sealed to the server's *sealing key* (ECIES, see
:mod:`provkit.crypto.seal`): the server publishes the public half in this registry
(``provkit server init``), stations seal with it and need no secret, and only the server
can open what they wrote. Keys never appear in logs, reprs or listings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from provkit.crypto import keys, seal
from provkit.crypto.aead import SealError
from provkit.errors import CredentialError, CryptoError
from provkit.registry.allocator import dialect_insert
from provkit.registry.schema import psk_credentials, server_keys
from provkit.registry.trust import Service, aware, bump_revision

if TYPE_CHECKING:
    from provkit.registry.api import Registry

SEALING_PURPOSE: Final = "psk-sealing"
"""``server_keys.purpose`` of the PSK sealing key."""

MAX_PSK_BYTES: Final = 32
"""Longest PSK Mbed TLS accepts by default (``MBEDTLS_PSK_MAX_LEN``)."""
MAX_IDENTITY_BYTES: Final = 128

NO_SEALING_KEY: Final = 8006
"""Code: no server has published a sealing key in this registry yet."""
IDENTITY_TAKEN: Final = 8007
"""Code: the identity (or the endpoint's credential) is recorded already."""
OTHER_SEALING_KEY: Final = 8008
"""Code: the key was sealed for another server key and cannot be opened here."""


@dataclass(frozen=True, slots=True)
class PskCredential:
    """A recorded PSK credential; the key itself is never part of it.

    Attributes:
        service: the server the credential is for.
        identity: the PSK identity (UTF-8 text).
        endpoint_name: the endpoint it belongs to.
        source: ``provisioning`` (written by a station) or ``bootstrap`` (issued by the server).
        created_at: when it was recorded.
    """

    service: Service
    identity: str
    endpoint_name: str
    source: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SealedPsk:
    """A credential as stored: the key is still sealed.

    Attributes:
        endpoint_name: the endpoint the identity belongs to.
        sealed_key: the sealed key.
        sealing_key_id: which server key it is sealed for.
    """

    endpoint_name: str
    sealed_key: bytes = field(repr=False)
    sealing_key_id: str


def associated_data(service: Service | str, identity: str) -> bytes:
    """What a sealed key is bound to: its row (service and identity)."""
    return f"psk|{Service(service).value}|{identity}".encode()


def check_identity(identity: str | bytes) -> str:
    """Return the identity as text.

    Raises:
        CredentialError: empty, not UTF-8 (the server's Mbed TLS binding reads identities as
            UTF-8), or longer than 128 bytes.
    """
    if isinstance(identity, bytes):
        try:
            identity = identity.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CredentialError("the PSK identity is not UTF-8 text") from exc
    if not identity or len(identity.encode("utf-8")) > MAX_IDENTITY_BYTES:
        raise CredentialError(f"a PSK identity has 1 to {MAX_IDENTITY_BYTES} bytes")
    return identity


def check_key(key: bytes) -> None:
    """Refuse a PSK Mbed TLS cannot use.

    Raises:
        CredentialError: empty or longer than 32 bytes.
    """
    if not 1 <= len(key) <= MAX_PSK_BYTES:
        raise CredentialError(f"a PSK has 1 to {MAX_PSK_BYTES} bytes, this one {len(key)}")


class PskCredentials:
    """PSK credentials of a registry (``registry.psk``)."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    # ------------------------------------------------------------------ sealing key
    def publish_sealing_key(self, public_key_der: bytes) -> str:
        """Publish the server's sealing public key (idempotent); return its id.

        Raises:
            CryptoError: not a P-256 public key.
        """
        keys.require_p256(keys.load_public_key(public_key_der))
        key_id = seal.key_id(public_key_der)
        with self._registry.transaction() as conn:
            conn.execute(
                dialect_insert(conn, server_keys)
                .values(
                    id=key_id,
                    purpose=SEALING_PURPOSE,
                    public_key=public_key_der,
                    created_at=datetime.now(UTC),
                )
                .on_conflict_do_nothing()
            )
        return key_id

    def sealing_key(self) -> tuple[str, bytes]:
        """The id and DER of the newest published sealing key.

        Raises:
            CredentialError: none is published (8006).
        """
        with self._registry.transaction() as conn:
            row = conn.execute(
                select(server_keys.c.id, server_keys.c.public_key)
                .where(server_keys.c.purpose == SEALING_PURPOSE)
                .order_by(server_keys.c.created_at.desc(), server_keys.c.id)
                .limit(1)
            ).first()
        if row is None:
            raise CredentialError(
                "no LwM2M server has published its sealing key in this registry",
                code=NO_SEALING_KEY,
                hint="run 'provkit server init' with this registry before recording PSK credentials",
            )
        return row.id, bytes(row.public_key)

    # ------------------------------------------------------------------ credentials
    def record(
        self,
        endpoint_name: str,
        identity: str | bytes,
        key: bytes,
        *,
        service: Service | str = Service.LWM2M,
        source: str = "provisioning",
        replace: bool = False,
    ) -> PskCredential:
        """Record that ``endpoint_name`` holds PSK ``identity``/``key`` for ``service``.

        Args:
            endpoint_name: the device's endpoint name.
            identity: the PSK identity (text, or UTF-8 bytes as stored in the device).
            key: the raw key bytes (1..32).
            service: the server that must accept it.
            source: who recorded it (``provisioning`` or ``bootstrap``).
            replace: replace the endpoint's earlier credential for the service (re-provisioning).

        Raises:
            CredentialError: unusable identity or key (8003), no sealing key published
                (8006), or the identity or endpoint recorded already without ``replace`` (8007).
        """
        text = check_identity(identity)
        check_key(key)
        key_id, public_der = self.sealing_key()
        service = Service(service)
        sealed = seal.seal_to(public_der, key, associated_data(service, text))
        now = datetime.now(UTC)
        try:
            with self._registry.transaction() as conn:
                if replace:
                    conn.execute(
                        delete(psk_credentials).where(
                            psk_credentials.c.service == service.value,
                            (psk_credentials.c.endpoint_name == endpoint_name)
                            | (psk_credentials.c.identity == text),
                        )
                    )
                conn.execute(
                    psk_credentials.insert().values(
                        service=service.value,
                        identity=text,
                        endpoint_name=endpoint_name,
                        sealed_key=sealed,
                        sealing_key_id=key_id,
                        source=source,
                        created_at=now,
                    )
                )
                bump_revision(conn)
        except IntegrityError as exc:
            raise CredentialError(
                f"a {service.value} PSK credential for {endpoint_name} or identity {text!r} exists already",
                code=IDENTITY_TAKEN,
                hint="re-provisioning replaces it (replace=True)",
            ) from exc
        return PskCredential(service, text, endpoint_name, source, now)

    def sealed(self, identity: str, service: Service | str = Service.LWM2M) -> SealedPsk | None:
        """The stored (sealed) credential of ``identity``, if any."""
        with self._registry.transaction() as conn:
            row = conn.execute(
                select(
                    psk_credentials.c.endpoint_name,
                    psk_credentials.c.sealed_key,
                    psk_credentials.c.sealing_key_id,
                ).where(
                    psk_credentials.c.service == Service(service).value,
                    psk_credentials.c.identity == identity,
                )
            ).first()
        return (
            None if row is None else SealedPsk(row.endpoint_name, bytes(row.sealed_key), row.sealing_key_id)
        )

    def find(
        self, *, service: Service | str | None = None, endpoint_name: str | None = None
    ) -> list[PskCredential]:
        """Recorded credentials (without keys), oldest first."""
        query = select(psk_credentials).order_by(psk_credentials.c.created_at, psk_credentials.c.identity)
        if service is not None:
            query = query.where(psk_credentials.c.service == Service(service).value)
        if endpoint_name is not None:
            query = query.where(psk_credentials.c.endpoint_name == endpoint_name)
        with self._registry.transaction() as conn:
            rows = conn.execute(query).all()
        return [
            PskCredential(
                Service(row.service),
                row.identity,
                row.endpoint_name,
                row.source,
                aware(row.created_at),
            )
            for row in rows
        ]

    def remove(self, endpoint_name: str, service: Service | str = Service.LWM2M) -> bool:
        """Forget the endpoint's credential for ``service``; return whether there was one."""
        with self._registry.transaction() as conn:
            removed = conn.execute(
                delete(psk_credentials).where(
                    psk_credentials.c.service == Service(service).value,
                    psk_credentials.c.endpoint_name == endpoint_name,
                )
            ).rowcount
            if removed:
                bump_revision(conn)
        return bool(removed)


def open_sealed(
    sealing_key: keys.PrivateKey, key_id: str, identity: str, service: Service | str, sealed: SealedPsk
) -> bytes:
    """Open a sealed PSK with the server's sealing key (the server side of :meth:`PskCredentials.record`).

    Raises:
        CredentialError: sealed for another server key (8008) or altered (8003).
    """
    if sealed.sealing_key_id != key_id:
        raise CredentialError(
            f"the PSK of identity {identity!r} is sealed for server key {sealed.sealing_key_id[:12]}…",
            code=OTHER_SEALING_KEY,
            hint="every server process of a registry must run from the same server home",
        )
    try:
        return seal.unseal(sealing_key, sealed.sealed_key, associated_data(service, identity))
    except (SealError, CryptoError) as exc:
        raise CredentialError(f"the sealed PSK of identity {identity!r} does not open: {exc}") from exc

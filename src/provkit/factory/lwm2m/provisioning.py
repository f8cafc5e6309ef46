"""``FactoryProvisioning``: the reference tool's library class, rebuilt on provkit.

Same constructor as AVSystem's (``endpoint_cfg, endpoint_name, server_info, token,
cert_info``) and the same flow — read the endpoint configuration, add certificates in
certificate modes, build the SenML CBOR blob, deliver it, register the device — with
these differences: the configuration is YAML/JSON (never evaluated), several Security
and Server instances are allowed, nothing is written to the working directory unless
asked, delivery uses provkit's transports, and every failure is a ``ProvkitError``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from provkit.errors import CryptoError, EndpointConfigError, Lwm2mError, RegistrationError
from provkit.factory.lwm2m import certs
from provkit.factory.lwm2m.coiote import CoioteRegistration, ServerInfo
from provkit.factory.lwm2m.delivery import deliver
from provkit.factory.lwm2m.zephyr import ZephyrResult, deliver_blob
from provkit.lwm2m.config import EndpointConfig, config_from_mapping, load_config_text
from provkit.lwm2m.objects import SECURITY_MODES
from provkit.lwm2m.profile import DEFAULT_TARGET, TargetProfile, check_server_certificates, get_profile
from provkit.lwm2m.response import AcceptResult
from provkit.lwm2m.senml_cbor import encode_cbor
from provkit.transport.link import DEFAULT_LINK_SETTINGS, DeviceLink, LinkSettings, SmpFiles
from provkit.transport.spec import LinkTarget

if TYPE_CHECKING:
    from provkit.factory.ca import FactoryCa

_CERT_MODES = (2, 4)


def _read(path: str | Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise EndpointConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc


def write_output(path: str | Path, data: bytes) -> None:
    """Write a result file (blob, JSON records).

    Raises:
        Lwm2mError: the file cannot be written.
    """
    try:
        Path(path).write_bytes(data)
    except OSError as exc:
        raise Lwm2mError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _credential(
    convert: Callable[[bytes], bytes], data: bytes, what: str, source: str | Path | bytes
) -> bytes:
    try:
        return convert(data)
    except CryptoError as exc:
        named = "" if isinstance(source, bytes) else f" {source}"
        raise certs.CertConfigError(f"{what}{named} is unusable: {exc}") from exc


def load_endpoint_config(source: str | Path | Mapping[str, object] | EndpointConfig) -> EndpointConfig:
    """Load an endpoint configuration from a file path, parsed data or an existing config."""
    if isinstance(source, EndpointConfig):
        return source
    if isinstance(source, Mapping):
        return config_from_mapping(source, require_credentials=False)
    text = _read(source, "endpoint configuration")
    return load_config_text(text, name=str(source), require_credentials=False)


class FactoryProvisioning:
    """Builds, delivers and registers one device's LwM2M configuration.

    Args:
        endpoint_cfg: YAML/JSON file path, parsed mapping or :class:`EndpointConfig`.
        endpoint_name: the endpoint name (URN), for the certificate CN and registration.
        server_info: Coiote server JSON path, mapping or :class:`ServerInfo` (or ``None``).
        token: Coiote access token (or ``None``).
        cert_info: cert-config JSON path, mapping or :class:`~certs.CertInfo` (or ``None``).
        target: the device client's profile (:mod:`provkit.lwm2m.profile`): ``"anjay"``
            (default) refuses resources Anjay cannot take in a factory bootstrap,
            ``"generic"`` allows the whole registry.
        allow_unverified_server: build certificate-mode blobs without a server certificate
            (``/0/x/4``), which make the device trust any server.

    Raises:
        EndpointConfigError: the configuration is invalid (the path names where).
        RegistrationError: the server file is invalid.
        CertConfigError: the cert-config is invalid.
    """

    def __init__(
        self,
        endpoint_cfg: str | Path | Mapping[str, object] | EndpointConfig,
        endpoint_name: str | None = None,
        server_info: str | Path | Mapping[str, object] | ServerInfo | None = None,
        token: str | None = None,
        cert_info: str | Path | Mapping[str, object] | certs.CertInfo | None = None,
        *,
        target: str | TargetProfile = DEFAULT_TARGET,
        allow_unverified_server: bool = False,
    ) -> None:
        self.target = get_profile(target)
        self.allow_unverified_server = allow_unverified_server
        self.config = load_endpoint_config(endpoint_cfg)
        self.endpoint_name = endpoint_name
        if isinstance(server_info, str | Path):
            server_info = ServerInfo.load(server_info)
        elif isinstance(server_info, Mapping):
            server_info = ServerInfo.from_mapping(server_info)
        self.server_info = server_info
        self.token = token
        if isinstance(cert_info, str | Path):
            cert_info = certs.CertInfo.load(cert_info)
        elif isinstance(cert_info, Mapping):
            cert_info = certs.CertInfo.from_mapping(cert_info)
        self.cert_info = cert_info
        self.credentials: certs.Credentials | None = None
        self.last_result: AcceptResult | None = None

    # ------------------------------------------------------------ security instances

    def management_instance(self) -> int:
        """Return the id of the first non-bootstrap Security instance (the one registered).

        Raises:
            EndpointConfigError: there is none.
        """
        for iid in self.config.instance_ids(0):
            if self.config.get(0, iid, 1) is not True:
                return iid
        raise EndpointConfigError("no non-bootstrap Security instance", path="Security")

    def get_sec_mode(self) -> str:
        """Return the management server's mode: ``psk``, ``cert``, ``nosec`` or ``est``."""
        mode = self.config.security_mode(self.management_instance())
        return SECURITY_MODES.get(mode if mode is not None else -1, "unknown")

    def cert_instances(self) -> list[int]:
        """Return the Security instances in a certificate mode (2 or 4)."""
        return [iid for iid in self.config.instance_ids(0) if self.config.security_mode(iid) in _CERT_MODES]

    def _targets(self, iid: int | None) -> list[int]:
        targets = [iid] if iid is not None else self.cert_instances()
        if not targets:
            raise EndpointConfigError("no Security instance uses a certificate mode", path="Security")
        return targets

    def set_server_cert(self, scert: str | Path | bytes, iid: int | None = None) -> None:
        """Put the server certificate (DER or PEM, file or bytes) into ``/0/x/4``.

        Raises:
            EndpointConfigError: the file is unreadable, or no instance uses a certificate mode.
            CertConfigError: it is not an X.509 certificate.
        """
        data = scert if isinstance(scert, bytes) else _read(scert, "server certificate")
        der = _credential(certs.certificate_der, data, "server certificate (-p)", scert)
        for target in self._targets(iid):
            self.config.set(0, target, 4, der)

    def set_endpoint_cert_and_key(
        self, pkey: str | Path | bytes, pcert: str | Path | bytes, iid: int | None = None
    ) -> None:
        """Put an existing endpoint key (``/0/x/5``) and certificate (``/0/x/3``) in place.

        Raises:
            EndpointConfigError: a file is unreadable, or no instance uses a certificate mode.
            CertConfigError: not a key / certificate, or the key does not match the certificate
                (the device would refuse the blob).
        """
        key = pkey if isinstance(pkey, bytes) else _read(pkey, "endpoint private key")
        cert = pcert if isinstance(pcert, bytes) else _read(pcert, "endpoint certificate")
        key_der = _credential(certs.private_key_der, key, "endpoint private key (-k)", pkey)
        cert_der = _credential(certs.certificate_der, cert, "endpoint certificate (-r)", pcert)
        if not certs.key_matches(key_der, cert_der):
            raise certs.CertConfigError(
                "the endpoint private key (-k) does not match the endpoint certificate (-r)"
            )
        self._install(certs.Credentials(key_der, cert_der), iid)

    def generate_self_signed_cert(
        self, *, ca: FactoryCa | None = None, iid: int | None = None, now: dt.datetime | None = None
    ) -> certs.Credentials:
        """Generate the endpoint key and certificate from the cert-config and install them.

        Args:
            ca: sign with the provkit factory CA instead of self-signing.
            iid: only this Security instance (default: every certificate-mode instance).
            now: the current time (tests).
        """
        info = self.cert_info or certs.CertInfo()
        if ca is None:
            credentials = certs.generate_self_signed(info, self.endpoint_name, now=now)
        else:
            credentials = certs.generate_ca_signed(info, self.endpoint_name, ca, now=now)
        self._install(credentials, iid)
        return credentials

    def _install(self, credentials: certs.Credentials, iid: int | None) -> None:
        for target in self._targets(iid):
            self.config.set(0, target, 3, credentials.cert_der)
            self.config.set(0, target, 5, credentials.key_der)
        self.credentials = credentials

    # ------------------------------------------------------------ blob, delivery, registration

    def build_blob(self) -> bytes:
        """Validate the configuration against the device rules and the target; return the blob.

        Raises:
            EndpointConfigError: a Security/Server rule is broken (e.g. a certificate mode
                without a certificate).
            TargetRefused: a resource the target's client cannot take in a factory bootstrap.
            UnverifiedServer: a certificate mode without a server certificate, not allowed.
        """
        self.config.validate()
        entries = self.config.entries()
        self.target.check(entries)
        if not self.allow_unverified_server:
            check_server_certificates(entries)
        return encode_cbor(entries)

    def provision_device(
        self,
        link: DeviceLink | LinkTarget | None = None,
        *,
        output: str | Path | None = None,
        timeout_s: float | None = None,
        settings: LinkSettings = DEFAULT_LINK_SETTINGS,
    ) -> bytes:
        """Build the blob; write it to ``output`` and/or deliver it over ``link``.

        ``link`` is an open link (one try, ``timeout_s``), or a target a link is opened to
        for each try (``settings``: timeouts and retries).

        :attr:`last_result` holds the device's answer (``None`` over a ``FileLink``, which
        only writes the frame for later replay).

        Returns:
            The blob.

        Raises:
            EndpointConfigError: a Security/Server rule is broken.
            TargetRefused, UnverifiedServer: see :meth:`build_blob`.
            Lwm2mError: ``output`` cannot be written.
            ProvisioningRefused: the device refused it.
            TransportError: the link failed.
        """
        blob = self.build_blob()
        if output is not None:
            write_output(output, blob)
        if link is not None:
            self.last_result = deliver(link, blob, timeout_s=timeout_s, settings=settings)
        return blob

    def provision_zephyr(
        self, link: SmpFiles, *, progress: Callable[[int, int], None] | None = None
    ) -> ZephyrResult:
        """Build the blob and provision a Zephyr board running Anjay's provisioning image over SMP.

        The endpoint name must be known (read it first with
        :func:`~provkit.factory.lwm2m.zephyr.read_endpoint_name`, before certificates are
        generated for it). ``result.txt`` decides success (see :mod:`~provkit.factory.lwm2m.zephyr`).

        Raises:
            EndpointConfigError, TargetRefused, UnverifiedServer: the blob cannot be built (nothing sent).
            SmpProvisioningFailed: the device reported a result other than 0.
            SmpError: the link failed.
        """
        if not self.endpoint_name:
            raise EndpointConfigError("provisioning over SMP needs the endpoint name (read from the device)")
        return deliver_blob(link, self.build_blob(), self.endpoint_name, progress=progress)

    def register(self) -> object:
        """Register the device with the management server; return the server's answer.

        Raises:
            RegistrationError: no server/token/endpoint name, or the server refused.
        """
        if self.server_info is None or not self.token or not self.endpoint_name:
            raise RegistrationError(
                "registration needs a server file (-s), a token (-t) and an endpoint name (-e)"
            )
        iid = self.management_instance()
        identity, psk = self.config.get(0, iid, 3), self.config.get(0, iid, 5)
        mode = self.config.security_mode(iid)
        return CoioteRegistration(self.server_info, self.token).register(
            self.endpoint_name,
            -1 if mode is None else mode,
            identity if isinstance(identity, bytes) else None,
            psk if isinstance(psk, bytes) else None,
        )

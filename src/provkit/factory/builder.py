"""Device configuration bundles: what the FCU sends to one device (pelion-fcc.md §1, §3, §4).

:class:`BundleBuilder` is built once per configuration: it resolves the item names of the
active mode, pre-builds every item that is the same for all devices (device info, server
URI and CA, update authority, custom properties) and keeps the CA. Per device it only
generates the key, signs the certificate, adds the per-device parameters and encodes.
It holds no mutable state, so threads may share one builder.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import time
import zoneinfo
from dataclasses import dataclass
from pathlib import Path

from provkit.codes import FcuErrorCode
from provkit.crypto import csr, issue, keys, x509
from provkit.errors import CryptoError, DeviceKeysError, FactoryError
from provkit.factory.ca import BOOTSTRAP_DEVICE_CERT_YEARS, LWM2M_DEVICE_CERT_YEARS, FactoryCa
from provkit.factory.config import EntropyMode, FcuConfig, KeyMode, invalid
from provkit.factory.device_keys import load_entropy, load_supplied_keys
from provkit.factory.encoding import ItemGroups, assemble, check_template
from provkit.factory.resources import StaticMaterial
from provkit.factory.results import CsrPending, DeviceConfigurationRequest, WarningInfo
from provkit.wire.bundle import (
    ENTROPY_SIZE,
    Bundle,
    CertificateChainItem,
    CertificateItem,
    ConfigParam,
    CsrRequest,
    KeyItem,
    encode_bundle,
)

_KU_DIGITAL_SIGNATURE = 1
_EKU_CLIENT_AUTH = 4
# mbedTLS subject DN order and short names for CsrReqs "Subj".
_DN_NAMES = (
    ("country-name", "C"),
    ("state-or-province-name", "ST"),
    ("locality-name", "L"),
    ("organization-name", "O"),
    ("organizational-unit-name", "OU"),
    ("common-name", "CN"),
)


@dataclass(frozen=True, slots=True)
class _DeviceItems:
    """What one device's bundle adds to the static items: identity, key, chain, entropy, session."""

    endpoint_name: str
    serial_number: str
    keys: tuple[KeyItem, ...]
    chain: CertificateChainItem
    entropy: bytes | None
    sid: str | None = None
    disable: bool = False

    @property
    def keep_alive(self) -> bool | None:
        # The second by_device message ends the session FCC kept open for the CSR (§1.7).
        return False if self.sid is not None else None


@dataclass(frozen=True, slots=True)
class ModeNames:
    """The ``mbed.*`` item names of bootstrap or LwM2M mode."""

    prefix: str
    private_key: str
    certificate: str
    server_ca: str
    server_uri: str

    @classmethod
    def for_mode(cls, use_bootstrap: bool) -> ModeNames:
        """Names for ``use-bootstrap`` true (``Bootstrap*``) or false (``LwM2M*``)."""
        prefix = "Bootstrap" if use_bootstrap else "LwM2M"
        return cls(
            prefix,
            f"mbed.{prefix}DevicePrivateKey",
            f"mbed.{prefix}DeviceCert",
            f"mbed.{prefix}ServerCACert",
            f"mbed.{prefix}ServerURI",
        )


def utc_offset(zone: zoneinfo.ZoneInfo, now: dt.datetime) -> str:
    """Return the ISO-8601 ``±HH:MM`` offset of ``zone`` at ``now``."""
    offset = now.astimezone(zone).utcoffset() or dt.timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{mins:02d}"


def dn_text(fields: dict[str, str]) -> str:
    """Return subject fields as an mbedTLS DN string (``C=..,O=..,CN=..``), commas escaped."""
    parts = []
    for key, short in _DN_NAMES:
        value = fields.get(key)
        if value:
            escaped = value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")
            parts.append(f"{short}={escaped}")
    return ",".join(parts)


def check_identity(endpoint_name: object, serial_number: object) -> None:
    """Raise the FCU 101 error when the endpoint name or serial number is missing or empty."""
    for label, value in (("endpoint name", endpoint_name), ("serial number", serial_number)):
        if not isinstance(value, str) or not value:
            raise FactoryError.from_code(
                FcuErrorCode.DEVICE_PARAMETER_MANDATORY, label, hint=f"pass a non-empty {label}"
            )


class BundleBuilder:
    """Builds device configuration bundles for one validated configuration.

    Args:
        config: the validated fcu.yml.
        static: the pre-loaded files of the configuration.
        ca: the factory CA (needed for ``by_tool`` and ``by_device``).

    Raises:
        ConfigError: 380 when the chain depth exceeds what the CA can supply.
    """

    def __init__(self, config: FcuConfig, static: StaticMaterial, ca: FactoryCa | None) -> None:
        self.config = config
        self.names = ModeNames.for_mode(config.use_bootstrap)
        self._ca = ca
        needs_ca = config.key_mode is not KeyMode.EXTERNALLY_SUPPLIED
        if ca is not None and needs_ca and config.chain_depth > ca.max_chain_depth:
            raise invalid(
                "device-certificate-chain-depth",
                f"{config.chain_depth} exceeds the factory CA chain ({ca.max_chain_depth} certificates)",
            )
        self._chain_tail = ca.chain_ders(config.chain_depth) if ca is not None else ()
        self._zone = zoneinfo.ZoneInfo(config.device_info.timezone) if config.device_info.timezone else None
        self._subject = dict(config.device_certificate)
        if not config.use_bootstrap and config.account_id:
            # LwM2M mode: FCC compares the certificate OU with the aid of the server URI.
            self._subject["organizational-unit-name"] = config.account_id
        self._validity = BOOTSTRAP_DEVICE_CERT_YEARS if config.use_bootstrap else LWM2M_DEVICE_CERT_YEARS
        self._static_params = self._build_static_params(static)
        certs = [CertificateItem(self.names.server_ca, static.server_ca_der)]
        if static.update_auth_der is not None:
            certs.append(CertificateItem("mbed.UpdateAuthCert", static.update_auth_der))
        self._static_certs = (*certs, *static.certificates)
        self._static_chains = static.chains
        self._static_keys = static.keys
        self._static_warnings = list(static.warnings)
        self._issuer: issue.DeviceCertificateIssuer | None = None
        if ca is not None:
            try:
                self._issuer = ca.issuer(self._subject, self._validity)
            except CryptoError as exc:
                raise invalid("device-certificate", str(exc)) from exc
        self._static_groups = ItemGroups.of(
            self._static_params, self._static_keys, self._static_certs, self._static_chains
        )
        # The wire rules are checked once, on a bundle of this configuration's shape; each
        # device's bundle then only differs in fixed-name values, key and certificate.
        placeholder = b"\x30"
        check_template(
            self._full_bundle(
                _DeviceItems(
                    "sample",
                    "sample",
                    keys=(KeyItem(self.names.private_key, "ECCPrivate", placeholder),),
                    chain=CertificateChainItem(self.names.certificate, (placeholder, *self._chain_tail)),
                    entropy=bytes(ENTROPY_SIZE) if config.entropy_mode is not EntropyMode.BY_DEVICE else None,
                )
            )
        )

    def _build_static_params(self, static: StaticMaterial) -> tuple[ConfigParam, ...]:
        cfg, info = self.config, self.config.device_info
        params = [
            ConfigParam("mbed.UseBootstrap", int(cfg.use_bootstrap)),
            ConfigParam(self.names.server_uri, cfg.server_uri),
            ConfigParam("mbed.Manufacturer", info.manufacturer_name),
            ConfigParam("mbed.ModelNumber", info.model_number),
            ConfigParam("mbed.DeviceType", info.device_type),
            ConfigParam("mbed.HardwareVersion", info.hardware_version),
            ConfigParam("mbed.MemoryTotalKB", info.memory_total),
        ]
        if cfg.use_bootstrap:
            params.append(ConfigParam("mbed.FirstToClaim", int(cfg.first_to_claim)))
        if cfg.vendor_id is not None:
            params.append(ConfigParam("mbed.VendorId", cfg.vendor_id))
        if cfg.class_id is not None:
            params.append(ConfigParam("mbed.ClassId", cfg.class_id))
        return (*params, *static.params)

    # ------------------------------------------------------------ per device

    def _device_params(self, endpoint_name: str, serial_number: str) -> list[ConfigParam]:
        params = [
            ConfigParam("mbed.EndpointName", endpoint_name),
            ConfigParam("mbed.SerialNumber", serial_number),
        ]
        if self.config.time_sync:
            now = time.time()
            params.append(ConfigParam("mbed.CurrentTime", int(now)))
            if self._zone is not None:
                moment = dt.datetime.fromtimestamp(now, dt.UTC)
                params.append(ConfigParam("mbed.Timezone", self.config.device_info.timezone))
                params.append(ConfigParam("mbed.UTCOffset", utc_offset(self._zone, moment)))
        return params

    def _entropy(self, keys_location: Path | None) -> bytes | None:
        mode = self.config.entropy_mode
        if mode is EntropyMode.BY_TOOL:
            return secrets.token_bytes(ENTROPY_SIZE)
        if mode is EntropyMode.EXTERNALLY_SUPPLIED:
            return load_entropy(keys_location)
        return None

    def _require_ca(self) -> FactoryCa:
        if self._ca is None:
            raise FactoryError.from_code(FcuErrorCode.GENERAL, "the factory CA is not loaded")
        return self._ca

    def _issue(self, public_key: keys.PublicKey, endpoint_name: str, now: dt.datetime) -> bytes:
        ca = self._require_ca()
        assert self._issuer is not None
        try:
            cert = self._issuer.issue(public_key, endpoint_name, ca.device_not_before(now))
        except CryptoError as exc:
            raise DeviceKeysError.from_code(
                FcuErrorCode.DTLS_CERTIFICATE_CREATE_FAILED,
                self.names.prefix,
                hint=f"{exc}; check endpoint_name and the device-certificate section",
            ) from exc
        return x509.certificate_der(cert)

    def _finish(self, own: _DeviceItems, warnings: list[WarningInfo]) -> DeviceConfigurationRequest:
        # Only this device's items are encoded here; the static ones were encoded once.
        groups = ItemGroups.of(
            self._device_params(own.endpoint_name, own.serial_number), own.keys, (), (own.chain,)
        )
        data = assemble(
            groups + self._static_groups,
            sid=own.sid,
            entropy=own.entropy,
            verify=self.config.verify_on_device,
            keep_alive=own.keep_alive,
            disable=True if own.disable else None,  # seed 000: "Present only when configured true"
        )
        leaf_der = own.chain.certificates[0]
        enrollment = x509.enrollment_id(leaf_der) if self.config.first_to_claim else None
        return DeviceConfigurationRequest(
            config_data=data,
            warnings=warnings,
            endpoint_name=own.endpoint_name,
            serial_number=own.serial_number,
            enrollment_id=enrollment,
        )

    def _full_bundle(self, own: _DeviceItems) -> Bundle:
        return Bundle(
            keys=(*own.keys, *self._static_keys),
            certificates=self._static_certs,
            certificate_chains=(own.chain, *self._static_chains),
            config_params=(*self._device_params(own.endpoint_name, own.serial_number), *self._static_params),
            entropy=own.entropy,
            verify=self.config.verify_on_device,
            keep_alive=own.keep_alive,
            sid=own.sid,
        )

    def prepare(
        self,
        endpoint_name: str,
        serial_number: str,
        device_keys_location: str | os.PathLike[str] | None = None,
        *,
        disable: bool = False,
    ) -> DeviceConfigurationRequest:
        """Build the bundle (or, in ``by_device`` mode, the first, CSR-requesting message).

        ``disable`` adds ``Disable 1`` (FCU's ``factory_fcc_disable``) to the last message:
        the device then refuses any further bundle.

        Raises:
            FactoryError: 101 for a missing endpoint name or serial number.
            DeviceKeysError: externally supplied material is unusable (102–104, 240, 245, 390).
            ConfigError: entropy.bin problems (360, 380).
        """
        check_identity(endpoint_name, serial_number)
        location = Path(device_keys_location) if device_keys_location else None
        warnings = list(self._static_warnings)
        entropy = self._entropy(location)
        now = dt.datetime.now(dt.UTC)
        mode = self.config.key_mode
        if mode is KeyMode.BY_DEVICE:
            return self._csr_request(endpoint_name, serial_number, entropy, warnings, disable)
        if mode is KeyMode.BY_TOOL:
            key = keys.generate_p256()
            leaf = self._issue(key.public_key(), endpoint_name, now)
            key_der = keys.private_key_der(key)
            ders = (leaf, *self._chain_tail)
        else:
            supplied = load_supplied_keys(
                location,
                prefix=self.names.prefix,
                endpoint_name=endpoint_name,
                account_id=None if self.config.use_bootstrap else self.config.account_id,
                chain_depth=self.config.chain_depth,
                now=now,
            )
            warnings.extend(supplied.warnings)
            key_der, ders = supplied.private_key_der, supplied.chain_ders
        own = _DeviceItems(
            endpoint_name,
            serial_number,
            keys=(KeyItem(self.names.private_key, "ECCPrivate", key_der),),
            chain=CertificateChainItem(self.names.certificate, ders),
            entropy=entropy,
            disable=disable,
        )
        return self._finish(own, warnings)

    def _csr_request(
        self,
        endpoint_name: str,
        serial_number: str,
        entropy: bytes | None,
        warnings: list[WarningInfo],
        disable: bool,
    ) -> DeviceConfigurationRequest:
        self._require_ca()
        subject = {**self._subject, "common-name": endpoint_name}
        sid = secrets.token_hex(16)
        request = CsrRequest(
            prkn=self.names.private_key,
            subject=dn_text(subject),
            key_usage=_KU_DIGITAL_SIGNATURE,
            ext_key_usage=_EKU_CLIENT_AUTH,
        )
        # FCC requires SID, an explicit Verify 0 and keep-alive with CsrReqs (§1.7).
        bundle = Bundle(csr_requests=(request,), entropy=entropy, verify=False, keep_alive=True, sid=sid)
        return DeviceConfigurationRequest(
            config_data=encode_bundle(bundle),
            warnings=warnings,
            endpoint_name=endpoint_name,
            serial_number=serial_number,
            # Disable waits for the second message: FCC refuses it together with KpAlvSess 1.
            pending_csr=CsrPending(sid, self.names.private_key, self.names.certificate, disable),
        )

    def complete(
        self, request: DeviceConfigurationRequest, csrs: dict[str, bytes]
    ) -> DeviceConfigurationRequest:
        """Sign the device's CSR and build the second ``by_device`` message.

        Args:
            request: the first message's request (with ``pending_csr``).
            csrs: the device's CSRs by key name.

        Raises:
            FactoryError: 180 when the CSR for the requested key is missing; 230 when its
                signature does not verify or its subject CN is not the endpoint name.
        """
        pending = request.pending_csr
        if pending is None:
            raise FactoryError.from_code(FcuErrorCode.GENERAL, "the request did not ask for a CSR")
        csr_der = csrs.get(pending.key_name)
        if csr_der is None:
            raise FactoryError.from_code(
                FcuErrorCode.RESPONSE_FIELD_MISSING,
                f"Csrs ({pending.key_name})",
                hint="the device sent no CSR",
            )
        try:
            public_key, subject = csr.load_signed_csr(csr_der)
        except CryptoError as exc:
            raise FactoryError.from_code(FcuErrorCode.CSR_SIGNATURE_INVALID, hint=str(exc)) from exc
        if subject.get("common-name") != request.endpoint_name:
            raise FactoryError.from_code(
                FcuErrorCode.CSR_SIGNATURE_INVALID,
                hint=f"the CSR subject CN {subject.get('common-name')!r} is not {request.endpoint_name!r}",
            )
        leaf = self._issue(public_key, request.endpoint_name, dt.datetime.now(dt.UTC))
        chain = CertificateChainItem(pending.cert_name, (leaf, *self._chain_tail), prkn=pending.key_name)
        own = _DeviceItems(
            request.endpoint_name,
            request.serial_number,
            keys=(),
            chain=chain,
            entropy=None,
            sid=pending.session_id,
            disable=pending.disable,
        )
        return self._finish(own, list(request.warnings))

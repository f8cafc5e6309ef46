"""Device configuration bundles: what the FCU sends to one device (see ``docs/factory.md``).

:class:`BundleBuilder` is built once per configuration: it resolves the item names of the
active mode, pre-builds every item that is the same for all devices (device info, server
URI and CA, update authority, custom properties) into a checked
:class:`~provkit.wire.bundle.BundleTemplate` and keeps the CA. Per device it only
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
from provkit.errors import BundleEncodeError, CryptoError, DeviceKeysError, FactoryError
from provkit.factory.ca import BOOTSTRAP_DEVICE_CERT_YEARS, LWM2M_DEVICE_CERT_YEARS, FactoryCa
from provkit.factory.config import EntropyMode, FcuConfig, KeyMode, invalid
from provkit.factory.device_keys import load_entropy, load_supplied_keys
from provkit.factory.resources import StaticMaterial
from provkit.factory.results import CsrPending, DeviceCertificateInfo, DeviceConfigurationRequest, WarningInfo
from provkit.params import mode_names
from provkit.params import names as n
from provkit.wire.bundle import (
    ECC_PRIVATE,
    ENTROPY_SIZE,
    Bundle,
    BundleTemplate,
    CertificateChainItem,
    CertificateItem,
    ConfigParam,
    CsrRequest,
    KeyItem,
    encode_bundle,
)
from provkit.wire.framing import DEFAULT_MAX_MESSAGE_BYTES

MAX_BUNDLE_BYTES = DEFAULT_MAX_MESSAGE_BYTES
"""Largest bundle prepared: what a device agent accepts in one message by default.

A larger frame is refused unread with transport status 3 (``MEMORY_OUT``), so it is
refused here instead, at prepare time, before any attempt to send it.
"""

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
        # The second by_device message ends the session FCC kept open for the CSR.
        return False if self.sid is not None else None


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


def checked_template(static: Bundle, sample: Bundle) -> BundleTemplate:
    """Check a configuration's bundle shape once and return its template.

    Raises:
        FactoryError: 100 naming the rule a configured item breaks.
    """
    try:
        return BundleTemplate(static, sample)
    except BundleEncodeError as exc:
        raise FactoryError.from_code(
            FcuErrorCode.GENERAL, exc.message, hint="an item of the configuration is not acceptable to FCC"
        ) from exc


def check_identity(endpoint_name: object, serial_number: object) -> None:
    """Refuse a missing, empty or non-printable endpoint name or serial number.

    Raises:
        FactoryError: 101 when one is missing or empty; 100 when it has a character that
            is not printable (a control character would reach the device's storage and
            every log and report that shows the name).
    """
    for label, value in (("endpoint name", endpoint_name), ("serial number", serial_number)):
        if not isinstance(value, str) or not value:
            raise FactoryError.from_code(
                FcuErrorCode.DEVICE_PARAMETER_MANDATORY, label, hint=f"pass a non-empty {label}"
            )
        if not value.isprintable():
            raise FactoryError.from_code(
                FcuErrorCode.GENERAL,
                f"the {label} {value!r} contains non-printable characters",
                hint=f"use printable characters only in the {label}",
            )


def _item_sizes(bundle: Bundle) -> list[tuple[str, int]]:
    """Every item of ``bundle`` with its size in bytes."""
    sizes = [(key.name, len(key.data)) for key in bundle.keys]
    sizes += [(cert.name, len(cert.data)) for cert in bundle.certificates]
    sizes += [(chain.name, sum(map(len, chain.certificates))) for chain in bundle.certificate_chains]
    for param in bundle.config_params:
        data = param.data
        size = len(data.encode() if isinstance(data, str) else data) if isinstance(data, str | bytes) else 8
        sizes.append((param.name, size))
    return sizes


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
        self.names = mode_names(config.use_bootstrap)
        self._ca = ca
        # Which key signs the certificates this builder issues, as the registry records it.
        self._signed_by = (
            ca.key_id if ca is not None and config.key_mode is not KeyMode.EXTERNALLY_SUPPLIED else None
        )
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
        certs = [CertificateItem(self.names.ca, static.server_ca_der)]
        if static.update_auth_der is not None:
            certs.append(CertificateItem(n.UPDATE_AUTH_CERT, static.update_auth_der))
        self._static_warnings = list(static.warnings)
        self._issuer: issue.DeviceCertificateIssuer | None = None
        if ca is not None:
            try:
                self._issuer = ca.issuer(self._subject, self._validity)
            except CryptoError as exc:
                raise invalid("device-certificate", str(exc)) from exc
        static_items = Bundle(
            keys=static.keys,
            certificates=(*certs, *static.certificates),
            certificate_chains=static.chains,
            config_params=self._build_static_params(static),
        )
        # The wire rules are checked once, on a bundle of this configuration's shape; each
        # device's bundle then only differs in fixed-name values, key and certificate.
        placeholder = b"\x30"
        sample = _DeviceItems(
            "sample",
            "sample",
            keys=(KeyItem(self.names.key, ECC_PRIVATE, placeholder),),
            chain=CertificateChainItem(self.names.cert, (placeholder, *self._chain_tail)),
            entropy=bytes(ENTROPY_SIZE) if config.entropy_mode is not EntropyMode.BY_DEVICE else None,
        )
        self._static_items = static_items
        self._template = checked_template(static_items, self._own_bundle(sample))
        # Refused here, before any device is prepared (and in a batch before anything is sent).
        self._check_size(self._template.encode(self._own_bundle(sample)), sample, "this configuration")

    def _build_static_params(self, static: StaticMaterial) -> tuple[ConfigParam, ...]:
        cfg, info = self.config, self.config.device_info
        params = [
            ConfigParam(n.USE_BOOTSTRAP, int(cfg.use_bootstrap)),
            ConfigParam(self.names.uri, cfg.server_uri),
            ConfigParam(n.MANUFACTURER, info.manufacturer_name),
            ConfigParam(n.MODEL_NUMBER, info.model_number),
            ConfigParam(n.DEVICE_TYPE, info.device_type),
            ConfigParam(n.HARDWARE_VERSION, info.hardware_version),
            ConfigParam(n.MEMORY_TOTAL_KB, info.memory_total),
        ]
        if cfg.use_bootstrap:
            params.append(ConfigParam(n.FIRST_TO_CLAIM, int(cfg.first_to_claim)))
        if cfg.vendor_id is not None:
            params.append(ConfigParam(n.VENDOR_ID, cfg.vendor_id))
        if cfg.class_id is not None:
            params.append(ConfigParam(n.CLASS_ID, cfg.class_id))
        return (*params, *static.params)

    # ------------------------------------------------------------ per device

    def _device_params(self, endpoint_name: str, serial_number: str) -> list[ConfigParam]:
        params = [
            ConfigParam(n.ENDPOINT_NAME, endpoint_name),
            ConfigParam(n.SERIAL_NUMBER, serial_number),
        ]
        if self.config.time_sync:
            now = time.time()
            params.append(ConfigParam(n.CURRENT_TIME, int(now)))
            if self._zone is not None:
                moment = dt.datetime.fromtimestamp(now, dt.UTC)
                params.append(ConfigParam(n.TIMEZONE, self.config.device_info.timezone))
                params.append(ConfigParam(n.UTC_OFFSET, utc_offset(self._zone, moment)))
        return params

    def _entropy(self, keys_location: Path | None) -> bytes | None:
        mode = self.config.entropy_mode
        if mode is EntropyMode.BY_TOOL:
            return secrets.token_bytes(ENTROPY_SIZE)
        if mode is EntropyMode.EXTERNALLY_SUPPLIED:
            return load_entropy(keys_location)
        return None

    @property
    def ca(self) -> FactoryCa | None:
        """The factory CA signing this configuration's device certificates (``None``: externally supplied)."""
        return self._ca

    def _require_ca(self) -> FactoryCa:
        if self._ca is None:
            raise FactoryError.from_code(FcuErrorCode.GENERAL, "the factory CA is not loaded")
        return self._ca

    def _issue(self, public_key: keys.PublicKey, endpoint_name: str, now: dt.datetime) -> x509.Certificate:
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
        return cert

    def _finish(
        self, own: _DeviceItems, serial: int, warnings: list[WarningInfo]
    ) -> DeviceConfigurationRequest:
        # Only this device's items are encoded here; the static ones were encoded once.
        data = self._template.encode(self._own_bundle(own))
        self._check_size(data, own, own.endpoint_name)
        fingerprint = x509.der_fingerprint(own.chain.certificates[0])
        certificate = DeviceCertificateInfo(
            fingerprint.hex(),
            format(serial, "x"),
            x509.enrollment_id_of(fingerprint),
            self._signed_by,
            der=own.chain.certificates[0],
        )
        return DeviceConfigurationRequest(
            config_data=data,
            warnings=warnings,
            endpoint_name=own.endpoint_name,
            serial_number=own.serial_number,
            enrollment_id=certificate.enrollment_id if self.config.first_to_claim else None,
            device_certificate=certificate,
        )

    def _check_size(self, data: bytes, own: _DeviceItems, device: str) -> None:
        """Refuse a bundle larger than a device agent's message limit, naming the largest items.

        Raises:
            FactoryError: 100, before the bundle is sent anywhere.
        """
        if len(data) <= MAX_BUNDLE_BYTES:
            return
        sizes = sorted(
            _item_sizes(self._static_items) + _item_sizes(self._own_bundle(own)), key=lambda pair: -pair[1]
        )
        largest = ", ".join(f"{name} ({length:,} bytes)" for name, length in sizes[:3])
        raise FactoryError.from_code(
            FcuErrorCode.GENERAL,
            f"the bundle for {device} is {len(data):,} bytes; a device agent takes messages of at most "
            f"{MAX_BUNDLE_BYTES:,} bytes",
            hint=f"largest items: {largest}; shrink them in fcu.yml or the files it names",
        )

    def _own_bundle(self, own: _DeviceItems) -> Bundle:
        """One device's own part of its bundle: identity, time, key, chain, entropy, session."""
        return Bundle(
            keys=own.keys,
            certificate_chains=(own.chain,),
            config_params=tuple(self._device_params(own.endpoint_name, own.serial_number)),
            entropy=own.entropy,
            verify=self.config.verify_on_device,
            keep_alive=own.keep_alive,
            # Disable is present only when configured true, as the FCU sends it.
            disable=True if own.disable else None,
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
            ders = (x509.certificate_der(leaf), *self._chain_tail)
            serial = leaf.serial_number
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
            serial = x509.load_certificate(ders[0]).serial_number
        own = _DeviceItems(
            endpoint_name,
            serial_number,
            keys=(KeyItem(self.names.key, ECC_PRIVATE, key_der),),
            chain=CertificateChainItem(self.names.cert, ders),
            entropy=entropy,
            disable=disable,
        )
        return self._finish(own, serial, warnings)

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
            prkn=self.names.key,
            subject=dn_text(subject),
            key_usage=_KU_DIGITAL_SIGNATURE,
            ext_key_usage=_EKU_CLIENT_AUTH,
        )
        # FCC requires SID and an explicit Verify 0 with CsrReqs, and the session stays open
        # for the certificate message (KpAlvSess 1).
        bundle = Bundle(csr_requests=(request,), entropy=entropy, verify=False, keep_alive=True, sid=sid)
        return DeviceConfigurationRequest(
            config_data=encode_bundle(bundle),
            warnings=warnings,
            endpoint_name=endpoint_name,
            serial_number=serial_number,
            # Disable waits for the second message: FCC refuses it together with KpAlvSess 1.
            pending_csr=CsrPending(sid, self.names.key, self.names.cert, disable),
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
        chain = CertificateChainItem(
            pending.cert_name, (x509.certificate_der(leaf), *self._chain_tail), prkn=pending.key_name
        )
        own = _DeviceItems(
            request.endpoint_name,
            request.serial_number,
            keys=(),
            chain=chain,
            entropy=None,
            sid=pending.session_id,
            disable=pending.disable,
        )
        return self._finish(own, leaf.serial_number, list(request.warnings))

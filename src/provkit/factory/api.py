"""``FactoryToolApi``: the FCU Python API, drop-in for factory tools written against ``fcu``.

A factory tool that did ``import fcu; api = fcu.FactoryToolApi()`` works with
``from provkit.factory import FactoryToolApi``. The configuration, the static files and the
CA are loaded once, on first use; afterwards every call builds only per-device data, so
one instance may be shared by many threads (each process of a line loads its own).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from pathlib import Path

from provkit.codes import FcuErrorCode
from provkit.errors import DeviceResponseError, FactoryError
from provkit.factory import setup as ca_setup
from provkit.factory.builder import BundleBuilder
from provkit.factory.ca import FactoryCa
from provkit.factory.ca_key import CaKeySource, resolve_source
from provkit.factory.config import FcuConfig, KeyMode
from provkit.factory.config_validate import load_config
from provkit.factory.paths import FcuPaths
from provkit.factory.resources import load_static_material, read_file
from provkit.factory.response import describe, read_response, verify_device_response
from provkit.factory.results import DeviceConfigurationRequest, DeviceResponseStatus, SetupStatus

PASSPHRASE_ENV = "PROVKIT_CA_PASSPHRASE"  # noqa: S105 - a variable name, not a secret
"""Environment variable holding the CA key passphrase when none is passed."""

_log = logging.getLogger(__name__)

PathArg = str | os.PathLike[str] | None


class FactoryToolApi:
    """The factory configurator utility (FCU) API.

    Args:
        home_dir: FCU home (default ``$FCU_HOME_DIR`` or the working directory).
        resources_dir: resources (default ``$FCU_RESOURCES_DIR`` or ``<home>/resources``).
        keystore_dir: keystore (default ``$FCU_KEYSTORE_DIR`` or ``<home>/keystore``).
        config_file: ``fcu.yml`` (default ``<home>/config/fcu.yml``).
        ca_passphrase: passphrase of the CA key (default ``$PROVKIT_CA_PASSPHRASE``; none
            means the key is stored unencrypted).
        ca_key: the CA key in a PKCS#11 token, as an RFC 7512 URI
            (``pkcs11:token=factory;object=provkit-ca``) or a
            :class:`~provkit.factory.ca_key.CaKeySource`; default: fcu.yml's
            ``certificate-authority-key``, else the token key setup recorded in the keystore,
            else ``keystore/fcu_key.pem``.
        pkcs11_module: the PKCS#11 module file (when not in the URI or fcu.yml).
        pin_file: file holding the token's user PIN (else ``$PROVKIT_PKCS11_PIN``).

    Raises:
        ConfigError: 190 when a directory cannot be resolved (e.g. a symlink loop).
    """

    def __init__(
        self,
        home_dir: PathArg = None,
        resources_dir: PathArg = None,
        keystore_dir: PathArg = None,
        config_file: PathArg = None,
        *,
        ca_passphrase: str | bytes | None = None,
        ca_key: str | CaKeySource | None = None,
        pkcs11_module: PathArg = None,
        pin_file: PathArg = None,
    ) -> None:
        self.paths = FcuPaths.resolve(home_dir, resources_dir, keystore_dir, config_file)
        choice = ca_key if isinstance(ca_key, CaKeySource) else CaKeySource(ca_key or "")
        self._key_choice = choice.over(
            CaKeySource(
                "",
                module=os.fspath(pkcs11_module) if pkcs11_module else None,
                pin_file=Path(pin_file) if pin_file else None,
            )
        )
        secret = ca_passphrase if ca_passphrase is not None else os.environ.get(PASSPHRASE_ENV)
        # surrogateescape: a passphrase from the environment may hold bytes that are not UTF-8.
        self._passphrase = secret.encode("utf-8", "surrogateescape") if isinstance(secret, str) else secret
        self._lock = threading.Lock()
        self._config: FcuConfig | None = None
        self._builder: BundleBuilder | None = None

    def __getstate__(self) -> dict[str, object]:
        # Picklable for process pools: each process reloads configuration and CA itself (and
        # reads the token PIN from its file or the environment: the PIN is never pickled).
        return {"paths": self.paths, "passphrase": self._passphrase, "key_choice": self._key_choice}

    def __setstate__(self, state: dict[str, object]) -> None:
        paths, passphrase, choice = state["paths"], state["passphrase"], state["key_choice"]
        assert isinstance(paths, FcuPaths) and (passphrase is None or isinstance(passphrase, bytes))
        assert isinstance(choice, CaKeySource)
        self.paths = paths
        self._passphrase = passphrase
        self._key_choice = choice
        self._lock = threading.Lock()
        self._config = None
        self._builder = None

    # ------------------------------------------------------------ loading

    @property
    def config(self) -> FcuConfig:
        """The validated ``fcu.yml`` (loaded on first access).

        Raises:
            ConfigError: 190, 200 or 380.
        """
        if self._config is None:
            with self._lock:
                if self._config is None:
                    self._config = load_config(self.paths)
        return self._config

    def ca_key_source(self) -> CaKeySource | None:
        """The token key the CA uses (``None``: ``keystore/fcu_key.pem``), see :mod:`provkit.factory.ca_key`.

        Raises:
            ConfigError: 190, 200, 380 when fcu.yml is needed and unusable.
            CaError: 221 when the keystore's key reference is unreadable.
        """
        configured = self.config.certificate_authority_key if self._needs_config() else None
        return resolve_source(self.paths, self._key_choice, configured)

    def _needs_config(self) -> bool:
        # An explicit URI needs no fcu.yml; otherwise an existing fcu.yml may name the key
        # (signing alone, e.g. LwM2M certificates, works in a home without one).
        return not self._key_choice.uri and self.paths.config_file.exists()

    @property
    def factory_ca(self) -> FactoryCa:
        """The factory CA, for signing other certificates (e.g. LwM2M device certificates).

        Raises:
            CaError: 210–222 when the keystore is missing or broken; HsmError 400–408 when
                the token key is unusable.
        """
        return FactoryCa.load(self.paths, self._passphrase, self.ca_key_source())

    def _get_builder(self) -> BundleBuilder:
        if self._builder is None:
            config = self.config
            with self._lock:
                if self._builder is None:
                    now = dt.datetime.now(dt.UTC)
                    static = load_static_material(config, now=now)
                    ca = None
                    if config.key_mode is not KeyMode.EXTERNALLY_SUPPLIED:
                        ca = FactoryCa.load(self.paths, self._passphrase, self.ca_key_source())
                    self._builder = BundleBuilder(config, static, ca)
        return self._builder

    def ca_key_id(self) -> str | None:
        """Which key signs this configuration's device certificates, as the registry records it.

        A token key's URI, or ``sha256:`` and the fingerprint of a key file's public key;
        ``None`` when provkit signs none (``externally_supplied``).

        Raises:
            FactoryError: the configuration or the CA cannot be loaded.
        """
        ca = self._get_builder().ca
        return None if ca is None else ca.key_id

    def reload(self) -> None:
        """Forget the loaded configuration and CA; the next call reads them again."""
        with self._lock:
            self._config = None
            self._builder = None

    # ------------------------------------------------------------ setup

    def setup_factory_configurator_utility(self, override_existing_ca: bool = False) -> SetupStatus:
        """Create the factory CA in the keystore (``fcu_key.pem`` 0600 + ``fcu.crt``).

        In ``setup-ca-as-intermediate`` mode writes the key and ``fcu.csr`` instead; have
        the CSR signed and pass the result to :meth:`install_ca_certificate`.

        Like Arm's FCU, failures are reported in the returned status, not raised: its
        ``status`` is the FCU code (290 when a CA exists and ``override_existing_ca`` is
        false, 190/200/380 for the configuration, 330 for a passphrase the key encryption
        refuses, 320 for an unwritable keystore, 400–409 for a token key) and ``errors``
        says what to fix. With a token key (``ca_key``, fcu.yml ``certificate-authority-key``)
        the key is generated in the token and the keystore records its URI, not a key.
        """
        try:
            return ca_setup.setup_ca(
                self.paths,
                self.config,
                override_existing_ca=override_existing_ca,
                passphrase=self._passphrase,
                key_source=self.ca_key_source(),
            )
        except FactoryError as error:
            return SetupStatus.failed(error)
        finally:
            self.reload()

    def install_ca_certificate(self, certificate: bytes | str | os.PathLike[str]) -> SetupStatus:
        """Install the signed intermediate CA certificate (PEM with chain, or DER; bytes, PEM text or a path).

        Failures are reported in the returned status: 360 (file unreadable), 220/221 (the
        key written by setup is missing or unusable), 211 (not a valid CA certificate),
        222 (it does not fit that key).
        """
        try:
            if isinstance(certificate, str) and certificate.lstrip().startswith("-----BEGIN"):
                data = certificate.encode()  # PEM text rather than a file name
            elif isinstance(certificate, bytes):
                data = certificate
            else:
                data = read_file(Path(certificate))
            return ca_setup.install_ca_certificate(
                self.paths, data, self._passphrase, key_source=self.ca_key_source()
            )
        except FactoryError as error:
            return SetupStatus.failed(error)
        finally:
            self.reload()

    def get_setup_status(self) -> SetupStatus:
        """Report whether the factory CA is ready (never raises for keystore or token problems)."""
        try:
            source = self.ca_key_source()
        except FactoryError as error:
            return SetupStatus.failed(error)
        return ca_setup.get_setup_status(self.paths, self._passphrase, source)

    # ------------------------------------------------------------ inject

    def prepare_device_configuration(
        self,
        endpoint_name: str,
        serial_number: str,
        device_keys_location: PathArg = None,
        factory_fcc_disable: bool = False,
    ) -> DeviceConfigurationRequest:
        """Build the device configuration bundle for one device.

        In ``by_device`` mode this is the first message (CSR request); send it, then pass
        the device's answer to :meth:`complete_device_configuration` for the second.

        Args:
            endpoint_name: the device's endpoint name (``mbed.EndpointName``, certificate CN).
            serial_number: the device's serial number.
            device_keys_location: folder of externally supplied keys and ``entropy.bin``.
            factory_fcc_disable: send ``Disable 1``: after storing, the device refuses any
                further bundle (FCU's API parameter, "Provisioning information" pages).

        Raises:
            FactoryError: with the FCU code of the problem (101–104, 2xx, 3xx).
        """
        request = self._get_builder().prepare(
            endpoint_name, serial_number, device_keys_location, disable=factory_fcc_disable
        )
        _log.info("prepared %d-byte bundle for %s", len(request.config_data), endpoint_name)
        return request

    def complete_device_configuration(
        self, request: DeviceConfigurationRequest, device_response: bytes
    ) -> DeviceConfigurationRequest:
        """``by_device`` mode: sign the CSR in the device's answer and build the second message.

        Raises:
            DeviceResponseError: the device failed the first message (code = its status).
            FactoryError: 180 (no CSR), 230 (bad CSR), 110 (protocol).
        """
        if request.pending_csr is None:
            raise FactoryError.from_code(FcuErrorCode.GENERAL, "this request expects no CSR response")
        response = read_response(device_response, expected_sid=request.pending_csr.session_id)
        if response.return_status != 0:
            status = describe(response)
            raise DeviceResponseError(status.message, code=status.status)
        csrs = {entry.prkn: entry.data for entry in response.csrs}
        return self._get_builder().complete(request, csrs)

    def verify_device_response(self, endpoint_name: str, device_response: bytes) -> DeviceResponseStatus:
        """Decode the device's answer to the (last) bundle and report its status.

        Raises:
            ResponseDecodeError: 180 when a field is missing.
            FactoryError: 110 for a protocol mismatch.
        """
        status = verify_device_response(device_response)
        _log.info("device %s answered status %d: %s", endpoint_name, status.status, status.message)
        return status

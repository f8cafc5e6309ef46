"""Build realistic credential C files for the developer-flow tests.

The certificates and keys are made here with provkit.crypto (PKCS#8 serialisation with
``cryptography``, as the portal delivers the key); the C layout follows the portal's
``mbed_cloud_dev_credentials.c`` (the shape of PelionIoT/mbl-cli's
``tests/unit/mbed_cloud_dev_credentials.c``) and manifest-tool's ``update_default_resources.c``
(``manifesttool/templates.py`` in 1.5.2, ``manifesttool/dev_tool/actions/code_template.txt``
in 2.6.2). No real file is copied.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import SubjectKeyIdentifier
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provkit.crypto import issue, keys, x509

ACCOUNT_ID = "0158a1b2c3d4e5f60718293a4b5c6d7e"
ENDPOINT = "0170f1e2d3c4b5a69788796a5b4c3d2e"
NOW = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
_USER_CONFIG = (
    "#ifdef MBED_CLOUD_CLIENT_USER_CONFIG_FILE\n#include MBED_CLOUD_CLIENT_USER_CONFIG_FILE\n#endif\n\n"
)


def c_bytes(data: bytes, fmt: str = "0x{:02x}", per_line: int = 8, indent: str = "    ") -> str:
    """A C brace initialiser of ``data``, ``per_line`` values a line."""
    rows = [
        indent + ", ".join(fmt.format(b) for b in data[i : i + per_line])
        for i in range(0, len(data), per_line)
    ]
    return "{\n" + ",\n".join(rows) + "\n}"


@dataclass
class DevCredentials:
    """Material of one developer certificate and the C text the service returns for it."""

    endpoint: str = ENDPOINT
    account_id: str = ACCOUNT_ID
    manufacturer: str = "dev_manufacturer"
    memory_kb: int = 0
    extra: str = ""
    portal_shape: bool = False
    """Make the device certificate the way the portal does (docs/developer.md): self-issued, CA:TRUE
    pathlen 0, clientAuth, OU = account id, CN = endpoint, valid 10 years."""
    values: dict[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        ca_key = keys.generate_p256()
        ca = issue.create_ca(
            ca_key, {"common-name": "Test Bootstrap CA", "organization-name": "provkit"}, now=NOW
        )
        device_key = keys.generate_p256()
        if self.portal_shape:
            cert = self._self_issued(device_key)
        else:
            cert = issue.issue_device_certificate(
                ca_key,
                ca,
                device_key.public_key(),
                common_name=self.endpoint,
                subject={"organizational-unit-name": self.account_id, "organization-name": "provkit"},
                not_before=NOW,
                validity_years=20,
            )
        pkcs8 = device_key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        self.values = {
            "MBED_CLOUD_DEV_BOOTSTRAP_ENDPOINT_NAME": self.endpoint.encode(),
            "MBED_CLOUD_DEV_ACCOUNT_ID": self.account_id.encode(),
            "MBED_CLOUD_DEV_BOOTSTRAP_SERVER_URI": (
                f"coaps://bootstrap.us-east-1.mbedcloud.com:5684?aid={self.account_id}".encode()
            ),
            "MBED_CLOUD_DEV_BOOTSTRAP_DEVICE_CERTIFICATE": x509.certificate_der(cert),
            "MBED_CLOUD_DEV_BOOTSTRAP_SERVER_ROOT_CA_CERTIFICATE": x509.certificate_der(ca),
            "MBED_CLOUD_DEV_BOOTSTRAP_DEVICE_PRIVATE_KEY": pkcs8,
            "MBED_CLOUD_DEV_MANUFACTURER": self.manufacturer.encode(),
            "MBED_CLOUD_DEV_MODEL_NUMBER": b"dev_model_num",
            "MBED_CLOUD_DEV_SERIAL_NUMBER": b"0",
            "MBED_CLOUD_DEV_DEVICE_TYPE": b"dev_device_type",
            "MBED_CLOUD_DEV_HARDWARE_VERSION": b"dev_hardware_version",
            "MBED_CLOUD_DEV_MEMORY_TOTAL_KB": self.memory_kb.to_bytes(4, "little"),
        }

    def _self_issued(self, key: keys.PrivateKey) -> cx509.Certificate:
        name = cx509.Name(
            [
                cx509.NameAttribute(NameOID.COUNTRY_NAME, "GB"),
                cx509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Cambridgeshire"),
                cx509.NameAttribute(NameOID.LOCALITY_NAME, "Cambridge"),
                cx509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test Ltd"),
                cx509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, self.account_id),
                cx509.NameAttribute(NameOID.COMMON_NAME, self.endpoint),
            ]
        )
        builder = (
            cx509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(cx509.random_serial_number())
            .not_valid_before(NOW)
            .not_valid_after(NOW + dt.timedelta(days=3652))
            .add_extension(cx509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(cx509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        )
        return builder.sign(key, hashes.SHA256())  # type: ignore[arg-type]

    def c_text(self) -> str:
        """The ``security_file_content``: portal layout with guards, an #error block and sizes."""
        v = self.values

        def string(name: str) -> str:
            escaped = v[name].decode().replace("\\", "\\\\").replace('"', '\\"')
            return f'const char {name}[] = "{escaped}";\n'

        def array(name: str) -> str:
            return f"const uint8_t {name}[] = \n{c_bytes(v[name])};\n\n"

        out = [
            "/*\n * Developer credentials generated for a test account; ';' and ' = ' in a comment.\n */\n",
            "#ifndef __MBED_CLOUD_DEV_CREDENTIALS_H__\n#define __MBED_CLOUD_DEV_CREDENTIALS_H__\n\n",
            "#if MBED_CONF_APP_DEVELOPER_MODE == 1\n",
            '#error "Replace mbed_cloud_dev_credentials.c with your own developer cert."\n#endif\n\n',
            "#include <inttypes.h>\n\n",
            string("MBED_CLOUD_DEV_BOOTSTRAP_ENDPOINT_NAME"),
            string("MBED_CLOUD_DEV_ACCOUNT_ID"),
            string("MBED_CLOUD_DEV_BOOTSTRAP_SERVER_URI"),
            "\n",
            array("MBED_CLOUD_DEV_BOOTSTRAP_DEVICE_CERTIFICATE"),
            array("MBED_CLOUD_DEV_BOOTSTRAP_SERVER_ROOT_CA_CERTIFICATE"),
            array("MBED_CLOUD_DEV_BOOTSTRAP_DEVICE_PRIVATE_KEY"),
            string("MBED_CLOUD_DEV_MANUFACTURER"),
            string("MBED_CLOUD_DEV_MODEL_NUMBER"),
            string("MBED_CLOUD_DEV_SERIAL_NUMBER"),
            string("MBED_CLOUD_DEV_DEVICE_TYPE"),
            string("MBED_CLOUD_DEV_HARDWARE_VERSION"),
            f"const uint32_t MBED_CLOUD_DEV_MEMORY_TOTAL_KB = {self.memory_kb};\n",
            self.extra,
        ]
        for name in (
            "MBED_CLOUD_DEV_BOOTSTRAP_DEVICE_CERTIFICATE",
            "MBED_CLOUD_DEV_BOOTSTRAP_SERVER_ROOT_CA_CERTIFICATE",
            "MBED_CLOUD_DEV_BOOTSTRAP_DEVICE_PRIVATE_KEY",
        ):
            out.append(f"const uint32_t {name}_SIZE = sizeof({name});\n")
        out.append("\n#endif //__MBED_CLOUD_DEV_CREDENTIALS_H__\n")
        return "".join(out)


@dataclass
class UpdateResources:
    """An update certificate and its ``update_default_resources.c`` in 1.x or 2.x layout."""

    validity_years: int = 20
    values: dict[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        key = keys.generate_p256()
        cert = issue.create_ca(key, {"common-name": "localhost"}, now=NOW, validity_years=self.validity_years)
        der = x509.certificate_der(cert)
        vendor = uuid.uuid5(uuid.NAMESPACE_DNS, "example.com")
        self.values = {
            "arm_uc_vendor_id": vendor.bytes,
            "arm_uc_class_id": uuid.uuid5(vendor, "dev-device").bytes,
            "arm_uc_default_fingerprint": cert.fingerprint(hashes.SHA256()),
            "arm_uc_default_subject_key_identifier": SubjectKeyIdentifier.from_public_key(
                key.public_key()
            ).digest,
            "arm_uc_default_certificate": der,
            "arm_uc_update_public_key": key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            ),
        }

    def _array(self, name: str, fmt: str, sized: bool = True) -> str:
        text = f"const uint8_t {name}[] = {c_bytes(self.values[name], fmt)};\n"
        if sized:
            text += f"const uint16_t {name}_size = sizeof({name});\n"
        return text + "\n"

    def c_text_v1(self) -> str:
        """manifest-tool 1.5.2 layout: <stdint.h>, #ifdef groups, 0x%x bytes, empty PSK arrays."""
        fmt = "0x{:x}"
        return "".join(
            [
                "// ----------------------------------------------------------------------------\n",
                "// Test resources in the manifest-tool 1.x layout.\n",
                "// ----------------------------------------------------------------------------\n",
                _USER_CONFIG,
                "#include <stdint.h>\n\n#ifdef MBED_CLOUD_DEV_UPDATE_ID\n",
                self._array("arm_uc_vendor_id", fmt),
                self._array("arm_uc_class_id", fmt),
                "#endif\n\n#ifdef MBED_CLOUD_DEV_UPDATE_CERT\n",
                self._array("arm_uc_default_fingerprint", fmt),
                self._array("arm_uc_default_subject_key_identifier", fmt),
                self._array("arm_uc_default_certificate", fmt),
                "#endif\n\n\n#ifdef MBED_CLOUD_DEV_UPDATE_PSK\n",
                "const uint8_t arm_uc_default_psk[] = {\n    \n};\n",
                "const uint8_t arm_uc_default_psk_size = sizeof(arm_uc_default_psk);\n",
                "const uint16_t arm_uc_default_psk_bits = sizeof(arm_uc_default_psk)*8;\n\n",
                "const uint8_t arm_uc_default_psk_id[] = {\n    \n};\n",
                "const uint8_t arm_uc_default_psk_id_size = sizeof(arm_uc_default_psk_id);\n#endif\n",
            ]
        )

    def c_text_v1_early(self) -> str:
        """The earlier 1.x template: a sizeof split over two lines, only ``psk`` and a literal
        ``psk_bits = 128`` (empty braces when no PSK), double spaces before ``=``."""
        fmt = "0x{:x}"
        fingerprint = self._array("arm_uc_default_fingerprint", fmt, sized=False)
        return "".join(
            [
                "//----------------------------------------------------------------------------\n",
                "//   Test resources in the early manifest-tool 1.x layout.\n",
                "//----------------------------------------------------------------------------\n\n",
                _USER_CONFIG,
                "#include <stdint.h>\n\n#ifdef MBED_CLOUD_DEV_UPDATE_ID\n",
                self._array("arm_uc_vendor_id", fmt),
                self._array("arm_uc_class_id", fmt).replace("[] =", "[]  ="),
                "#endif\n\n#ifdef MBED_CLOUD_DEV_UPDATE_CERT\n",
                fingerprint.replace("[] =", "[] = "),
                "const uint16_t arm_uc_default_fingerprint_size =\n",
                "    sizeof(arm_uc_default_fingerprint);\n\n",
                self._array("arm_uc_default_certificate", fmt),
                "#endif\n\n\n#ifdef MBED_CLOUD_DEV_UPDATE_PSK\n",
                "const uint8_t arm_uc_default_psk[] = {\n    \n};\n",
                "const uint16_t arm_uc_default_psk_bits = 128;\n#endif\n",
            ]
        )

    def c_text_v2(self) -> str:
        """manifest-tool 2.6.2 layout: <inttypes.h>, no guards, { 0 } fingerprint, public key."""
        fmt = "0x{:02X}"
        return "".join(
            [
                "// ----------------------------------------------------------------------------\n",
                "// Test resources in the manifest-dev-tool 2.x layout, generated 2024-06-01.\n",
                "// ----------------------------------------------------------------------------\n",
                _USER_CONFIG,
                "#include <inttypes.h>\n\n",
                self._array("arm_uc_vendor_id", fmt),
                self._array("arm_uc_class_id", fmt),
                "// kept for backwards compatibility, not used\n",
                "const uint8_t arm_uc_default_fingerprint[] = { 0 };\n",
                "const uint16_t arm_uc_default_fingerprint_size = sizeof(arm_uc_default_fingerprint);\n\n",
                self._array("arm_uc_default_certificate", fmt),
                self._array("arm_uc_update_public_key", fmt, sized=False),
            ]
        )


def replace_array(text: str, name: str, initialiser: str) -> str:
    """``text`` with the ``const uint8_t name[]`` definition given ``initialiser`` instead."""
    start = text.index(f"const uint8_t {name}[]")
    end = text.index("};", start) + 2
    return f"{text[:start]}const uint8_t {name}[] = {initialiser};{text[end:]}"

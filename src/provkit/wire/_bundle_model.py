"""Request bundle model: the items and groups of a device configuration bundle.

Field names follow the wire keys of ``fcc_bundle_fields.h`` (PelionIoT/mbed-cloud-client,
``factory-configurator-client/factory-configurator-client/source/include/``); the wire
spelling of each key is kept in the ``*_KEY`` constants so encoder and decoder share one
source of truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Final

from provkit.wire.session import SID_KEY as SID_KEY
from provkit.wire.session import SessionFlag, SessionFlags

SCHEME_VERSION: Final = "0.0.1"
"""The only scheme version FCC has ever accepted (R1.3.0 … 4.13.4)."""

# Top-level group keys.
SCHEME_VERSION_KEY: Final = "SchemeVersion"
KEYS_KEY: Final = "Keys"
CERTIFICATES_KEY: Final = "Certificates"
CERTIFICATE_CHAINS_KEY: Final = "CertificateChains"
CONFIG_PARAMS_KEY: Final = "ConfigParams"
CSR_REQS_KEY: Final = "CsrReqs"
ENTROPY_KEY: Final = "Entropy"
ROT_KEY: Final = "ROT"
VERIFY_KEY: Final = SessionFlag.VERIFY
DISABLE_KEY: Final = SessionFlag.DISABLE
KEEP_ALIVE_KEY: Final = SessionFlag.KEEP_ALIVE
CSRS_RESPONSE_KEY: Final = "Csrs"
"""The response group. A request holding it gets 23 (unknown group): FCC's loop has no
branch for it, and ``Csrs`` is no prefix of any request group."""

TOP_LEVEL_KEYS: Final = frozenset(
    {
        SCHEME_VERSION_KEY,
        KEYS_KEY,
        CERTIFICATES_KEY,
        CERTIFICATE_CHAINS_KEY,
        CONFIG_PARAMS_KEY,
        CSR_REQS_KEY,
        ENTROPY_KEY,
        ROT_KEY,
        VERIFY_KEY,
        DISABLE_KEY,
        KEEP_ALIVE_KEY,
        SID_KEY,
    }
)

LOOKED_UP_BY_KEY: Final = frozenset({SCHEME_VERSION_KEY, ENTROPY_KEY, ROT_KEY})
"""Groups FCC reads by key before its wire-order loop (first copy only) and skips in it."""

# Item-map field keys.
NAME_FIELD: Final = "Name"
TYPE_FIELD: Final = "Type"
FORMAT_FIELD: Final = "Format"
DATA_FIELD: Final = "Data"
DATA_ARRAY_FIELD: Final = "DataArray"
PRKN_FIELD: Final = "PrKN"
SUBJECT_FIELD: Final = "Subj"
MD_FIELD: Final = "MD"
EXT_FIELD: Final = "Ext"
KU_FIELD: Final = "KU"
EKU_FIELD: Final = "EKU"
TRUST_FIELD: Final = "Trust"
SM_FIELD: Final = "SM"
SM_PRIVATE_FIELD: Final = "Prv"
SM_PUBLIC_FIELD: Final = "Pub"

DER_FORMAT: Final = "der"
PEM_FORMAT: Final = "pem"
ECC_PRIVATE: Final = "ECCPrivate"
ECC_PUBLIC: Final = "ECCPublic"
KEY_TYPES: Final = frozenset({ECC_PRIVATE, ECC_PUBLIC})
UNSUPPORTED_KEY_TYPES: Final = frozenset({"RSAPrivate", "RSAPublic", "Symmetric"})
STORAGE_MEDIA: Final = frozenset({"SE", "Device"})

ENTROPY_SIZE: Final = 48
ROT_SIZE: Final = 16
ENTROPY_ITEM: Final = "entropy"
"""The name FCC gives the entropy in its messages (``STORAGE_RBP_RANDOM_SEED_NAME``)."""
ROT_ITEM: Final = "rot"
"""The name FCC gives the root of trust in its messages (``STORAGE_RBP_ROT_NAME``)."""
MAX_CSR_REQUESTS: Final = 5
MAX_CHAIN_LENGTH: Final = 5
MAX_TOP_LEVEL_KEYS: Final = 12
MD_SHA256: Final = 1


@dataclass(frozen=True, slots=True)
class KeyItem:
    """An entry of ``Keys``: a DER EC key to store.

    Attributes:
        name: KCM item name.
        type: ``"ECCPrivate"`` (SEC1 DER) or ``"ECCPublic"`` (SubjectPublicKeyInfo DER).
        data: the DER bytes.
        format: always ``"der"``; FCC refuses anything else.
    """

    name: str
    type: str
    data: bytes
    format: str = DER_FORMAT


@dataclass(frozen=True, slots=True)
class CertificateItem:
    """An entry of ``Certificates``: one DER X.509 certificate.

    Attributes:
        name: KCM item name.
        data: the DER certificate.
        prkn: name of a stored private key the certificate's public key must match.
    """

    name: str
    data: bytes
    prkn: str | None = None


@dataclass(frozen=True, slots=True)
class CertificateChainItem:
    """An entry of ``CertificateChains``: DER certificates, leaf first, towards the root.

    Attributes:
        name: KCM item name of the chain.
        certificates: 1 to 5 DER certificates (``DataArray`` on the wire).
        prkn: name of a stored private key the leaf's public key must match.
    """

    name: str
    certificates: tuple[bytes, ...]
    prkn: str | None = None


class BigNum(int):
    """A ``ConfigParams`` Data sent as a tag 2 (positive bignum): its value, plus the raw bytes.

    FCC stores the bignum's byte string exactly as received (``fcc_bundle_get_variant``),
    so a device needs the bytes, while it compares equal to the plain integer.

    Attributes:
        raw: the big-endian magnitude as it was on the wire (leading zeros kept).
    """

    raw: bytes

    def __new__(cls, raw: bytes) -> BigNum:
        """Build the value of ``raw`` (big-endian) and keep ``raw``."""
        number = super().__new__(cls, int.from_bytes(raw, "big"))
        number.raw = bytes(raw)
        return number


@dataclass(frozen=True, slots=True)
class ConfigParam:
    """An entry of ``ConfigParams``.

    Attributes:
        name: KCM item name (``mbed.*`` or a custom name).
        data: an integer (CBOR int, tag 2 bignum beyond 64 bits; decoded tag 2 byte
            strings are :class:`BigNum`), text, bytes, or ``None`` when the wire map has
            no ``Data`` (FCC stores an empty item).
        wire_word: for text, bytes and bignums read from a bundle, the four bytes at the
            start of the value's payload in that bundle, whatever the value's length
            (zeros past its end): what FCC stores for the parameters it keeps as exactly
            four bytes. ``None`` otherwise; not part of equality.
    """

    name: str
    data: int | str | bytes | None
    wire_word: bytes | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class StorageMedium:
    """The ``SM`` map of a CSR request (client ≥ 4.0.0).

    Attributes:
        private: where the generated private key lives: ``"Device"`` or ``"SE"``.
        public: if set, also store the public key there (``"Device"`` or ``"SE"``).
    """

    private: str = "Device"
    public: str | None = None


@dataclass(frozen=True, slots=True)
class CsrRequest:
    """An entry of ``CsrReqs``: the device generates an EC P-256 key pair and a CSR.

    Attributes:
        prkn: name for the generated private key (``PrKN``).
        subject: subject DN in mbedTLS form, e.g. ``"C=GB,O=Acme,CN=dev-1"`` (``Subj``).
        md: message digest, 1 = SHA-256 (``MD``).
        key_usage: ``Ext.KU`` bitmask (1 digitalSignature, 2 nonRepudiation,
            4 keyCertSign, 8 keyAgreement), or ``None``.
        ext_key_usage: ``Ext.EKU`` bitmask (1 any, 2 serverAuth, 4 clientAuth,
            8 codeSigning, 16 emailProtection, 256 timeStamping, 512 OCSPSigning), or ``None``.
        storage: the ``SM`` map, or ``None`` to omit it.
    """

    prkn: str
    subject: str
    md: int = MD_SHA256
    key_usage: int | None = None
    ext_key_usage: int | None = None
    storage: StorageMedium | None = None


@dataclass(frozen=True, slots=True)
class Bundle:
    """A whole request bundle; empty groups and ``None`` flags are left off the wire.

    Attributes:
        keys: ``Keys`` entries.
        certificates: ``Certificates`` entries.
        certificate_chains: ``CertificateChains`` entries.
        config_params: ``ConfigParams`` entries.
        csr_requests: ``CsrReqs`` entries (at most 5; need ``sid`` and ``verify=False``).
        entropy: 48 bytes of entropy, or ``None``.
        rot: 16-byte root of trust, or ``None``.
        verify: run device verification (FCC default when absent: yes).
        disable: disable the factory flow after this bundle (default: no).
        keep_alive: more bundles follow in this session (``KpAlvSess``).
        sid: FCU session id, echoed in the response.
        scheme_version: always ``"0.0.1"``.
    """

    keys: tuple[KeyItem, ...] = ()
    certificates: tuple[CertificateItem, ...] = ()
    certificate_chains: tuple[CertificateChainItem, ...] = ()
    config_params: tuple[ConfigParam, ...] = ()
    csr_requests: tuple[CsrRequest, ...] = ()
    entropy: bytes | None = None
    rot: bytes | None = None
    verify: bool | None = None
    disable: bool | None = None
    keep_alive: bool | None = None
    sid: str | None = None
    scheme_version: str = SCHEME_VERSION

    @property
    def session(self) -> SessionFlags:
        """The bundle's ``Verify``, ``Disable``, ``KpAlvSess`` and ``SID``."""
        return SessionFlags(self.verify, self.disable, self.keep_alive, self.sid)


# ---------------------------------------------------------------- parsed groups
# One class per top-level key, so a device handler can ``match`` on what parse_group
# returned while iterating the top map in wire order.


@dataclass(frozen=True, slots=True)
class SchemeVersionGroup:
    """A ``SchemeVersion`` entry (already checked to be ``"0.0.1"``)."""

    key: ClassVar[str] = SCHEME_VERSION_KEY
    version: str


@dataclass(frozen=True, slots=True)
class KeysGroup:
    """A ``Keys`` entry."""

    key: ClassVar[str] = KEYS_KEY
    items: tuple[KeyItem, ...]


@dataclass(frozen=True, slots=True)
class CertificatesGroup:
    """A ``Certificates`` entry."""

    key: ClassVar[str] = CERTIFICATES_KEY
    items: tuple[CertificateItem, ...]


@dataclass(frozen=True, slots=True)
class CertificateChainsGroup:
    """A ``CertificateChains`` entry."""

    key: ClassVar[str] = CERTIFICATE_CHAINS_KEY
    items: tuple[CertificateChainItem, ...]


@dataclass(frozen=True, slots=True)
class ConfigParamsGroup:
    """A ``ConfigParams`` entry."""

    key: ClassVar[str] = CONFIG_PARAMS_KEY
    items: tuple[ConfigParam, ...]


@dataclass(frozen=True, slots=True)
class CsrReqsGroup:
    """A ``CsrReqs`` entry (at most 5 requests)."""

    key: ClassVar[str] = CSR_REQS_KEY
    items: tuple[CsrRequest, ...]


@dataclass(frozen=True, slots=True)
class EntropyGroup:
    """An ``Entropy`` entry: exactly 48 bytes."""

    key: ClassVar[str] = ENTROPY_KEY
    data: bytes


@dataclass(frozen=True, slots=True)
class RotGroup:
    """A ``ROT`` entry: exactly 16 bytes."""

    key: ClassVar[str] = ROT_KEY
    data: bytes


@dataclass(frozen=True, slots=True)
class FlagGroup:
    """A ``Verify``, ``Disable`` or ``KpAlvSess`` entry.

    Attributes:
        name: which flag (the wire key).
        value: the flag (CBOR integer 0 or 1 on the wire).
    """

    name: SessionFlag
    value: bool

    @property
    def key(self) -> str:
        """The wire key, like the ``key`` of the other group classes."""
        return self.name


@dataclass(frozen=True, slots=True)
class SidGroup:
    """A ``SID`` entry: the FCU session id."""

    key: ClassVar[str] = SID_KEY
    sid: str


Group = (
    SchemeVersionGroup
    | KeysGroup
    | CertificatesGroup
    | CertificateChainsGroup
    | ConfigParamsGroup
    | CsrReqsGroup
    | EntropyGroup
    | RotGroup
    | FlagGroup
    | SidGroup
)
"""What :func:`provkit.wire.bundle.parse_group` returns for one top-level entry."""

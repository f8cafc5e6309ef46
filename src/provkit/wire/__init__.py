"""Pure wire formats of the provisioning protocol (no I/O).

* :mod:`provkit.wire.bundle` — the request bundle: model, encoder, strict FCC decoder.
* :mod:`provkit.wire.response` — the response bundle: exact encoder, lenient decoder.
* :mod:`provkit.wire.cbor_strict` — the wire's rules over the shared :mod:`provkit.cbor` codec.
* :mod:`provkit.wire.framing` — ``mbedprov`` transport frames (imported on its own).
"""

from provkit.wire.bundle import (
    Bundle,
    CertificateChainItem,
    CertificateItem,
    ConfigParam,
    CsrRequest,
    KeyItem,
    StorageMedium,
    decode_bundle,
    decode_envelope,
    encode_bundle,
    parse_group,
)
from provkit.wire.response import (
    BundleResponse,
    CsrResult,
    decode_response,
    encode_response,
    split_message,
)

__all__ = [
    "Bundle",
    "BundleResponse",
    "CertificateChainItem",
    "CertificateItem",
    "ConfigParam",
    "CsrRequest",
    "CsrResult",
    "KeyItem",
    "StorageMedium",
    "decode_bundle",
    "decode_envelope",
    "decode_response",
    "encode_bundle",
    "encode_response",
    "parse_group",
    "split_message",
]

"""Request bundle ("device configuration bundle"): model, encoder and strict decoder.

The factory side calls :func:`encode_bundle`. The device side either calls
:func:`decode_bundle` for the whole bundle, or — to process groups in wire order and
stop at the first failure, as FCC does — :func:`decode_envelope`, then
:func:`parse_group` for each pair, then :func:`check_session_rules` on the
:class:`SessionFlags` read. Every decoding
failure is a :class:`~provkit.errors.BundleDecodeError` whose ``fcc_status`` is the
``ReturnStatus`` FCC answers and whose ``item`` is the name FCC appends to the
InfoMessage prefix (empty for parse failures, which FCC reports as ``General error:``).

See ``docs/wire-format.md`` for the byte-level description.
"""

from __future__ import annotations

from provkit.errors import BundleDecodeError
from provkit.wire._bundle_decode import decode_envelope, parse_group
from provkit.wire._bundle_encode import BundleTemplate, check_bundle, check_name, encode_bundle
from provkit.wire._bundle_model import (
    CSR_REQS_KEY,
    ECC_PRIVATE,
    ECC_PUBLIC,
    ENTROPY_SIZE,
    LOOKED_UP_BY_KEY,
    MAX_CHAIN_LENGTH,
    MAX_CSR_REQUESTS,
    MAX_TOP_LEVEL_KEYS,
    ROT_SIZE,
    SCHEME_VERSION,
    TOP_LEVEL_KEYS,
    BigNum,
    Bundle,
    CertificateChainItem,
    CertificateChainsGroup,
    CertificateItem,
    CertificatesGroup,
    ConfigParam,
    ConfigParamsGroup,
    CsrReqsGroup,
    CsrRequest,
    EntropyGroup,
    FlagGroup,
    Group,
    KeyItem,
    KeysGroup,
    RotGroup,
    SchemeVersionGroup,
    SidGroup,
    StorageMedium,
)
from provkit.wire.session import SessionFlag, SessionFlags, session_violation

__all__ = [
    "CSR_REQS_KEY",
    "ECC_PRIVATE",
    "ECC_PUBLIC",
    "ENTROPY_SIZE",
    "LOOKED_UP_BY_KEY",
    "MAX_CHAIN_LENGTH",
    "MAX_CSR_REQUESTS",
    "MAX_TOP_LEVEL_KEYS",
    "ROT_SIZE",
    "SCHEME_VERSION",
    "TOP_LEVEL_KEYS",
    "BigNum",
    "Bundle",
    "BundleTemplate",
    "CertificateChainItem",
    "CertificateChainsGroup",
    "CertificateItem",
    "CertificatesGroup",
    "ConfigParam",
    "ConfigParamsGroup",
    "CsrReqsGroup",
    "CsrRequest",
    "EntropyGroup",
    "FlagGroup",
    "Group",
    "KeyItem",
    "KeysGroup",
    "RotGroup",
    "SchemeVersionGroup",
    "SessionFlag",
    "SessionFlags",
    "SidGroup",
    "StorageMedium",
    "check_bundle",
    "check_name",
    "check_session_rules",
    "decode_bundle",
    "decode_envelope",
    "encode_bundle",
    "parse_group",
]


def check_session_rules(flags: SessionFlags, *, csr_requested: bool) -> None:
    """Apply FCC's cross-group rules once all groups are read (:func:`session_violation`).

    Args:
        flags: the bundle's session flags, as read so far.
        csr_requested: whether the bundle has a ``CsrReqs`` group (a handler that, as FCC,
            parses that group only after these rules passes ``True`` for its presence).

    Raises:
        BundleDecodeError: 35 for ``Disable`` with ``KpAlvSess``; 20 for ``CsrReqs``
            without ``SID``, without an explicit ``Verify`` 0, or with ``Disable`` 1.
    """
    violation = session_violation(flags, csr_requested=csr_requested)
    if violation is not None:
        raise BundleDecodeError(violation.reason, fcc_status=violation.status)


def decode_bundle(data: bytes) -> Bundle:
    """Decode and check a whole request bundle (envelope, every group, session rules).

    Repeated top-level keys behave as FCC's wire-order loop does: item groups add up,
    the first ``Entropy``/``ROT`` counts (FCC looks them up by key), and the last
    ``Verify``/``Disable``/``KpAlvSess``/``SID`` wins.

    Args:
        data: the CBOR body of an ``mbedprov`` frame.

    Returns:
        The decoded bundle; ``decode_bundle(encode_bundle(b)) == b``.

    Raises:
        BundleDecodeError: with the ``fcc_status`` FCC answers for the first defect.
    """
    keys: list[KeyItem] = []
    certs: list[CertificateItem] = []
    chains: list[CertificateChainItem] = []
    params: list[ConfigParam] = []
    csrs: list[CsrRequest] = []
    entropy: bytes | None = None
    rot: bytes | None = None
    session = SessionFlags()
    seen_once: set[str] = set()
    for key, value in decode_envelope(data):
        if key in LOOKED_UP_BY_KEY:
            # FCC reads these by key before its loop and skips them in it: later copies are ignored.
            if key in seen_once:
                continue
            seen_once.add(key)
        group = parse_group(key, value)
        match group:
            case KeysGroup(items=items):
                keys.extend(items)
            case CertificatesGroup(items=items):
                certs.extend(items)
            case CertificateChainsGroup(items=items):
                chains.extend(items)
            case ConfigParamsGroup(items=items):
                params.extend(items)
            case CsrReqsGroup(items=items):
                csrs.extend(items)
            case EntropyGroup(data=raw):
                entropy = raw if entropy is None else entropy
            case RotGroup(data=raw):
                rot = raw if rot is None else rot
            case FlagGroup(name=name, value=flag):
                session = session.with_flag(name, flag)
            case SidGroup(sid=text):
                session = session.with_sid(text)
            case SchemeVersionGroup():
                pass
    bundle = Bundle(
        keys=tuple(keys),
        certificates=tuple(certs),
        certificate_chains=tuple(chains),
        config_params=tuple(params),
        csr_requests=tuple(csrs),
        entropy=entropy,
        rot=rot,
        verify=session.verify,
        disable=session.disable,
        keep_alive=session.keep_alive,
        sid=session.sid,
    )
    check_session_rules(session, csr_requested=bool(csrs))
    return bundle

"""Request bundle ("device configuration bundle"): model, encoder and FCC's decoder.

The factory side calls :func:`encode_bundle`. The device side either calls
:func:`decode_bundle` for the whole bundle, or — to store each item before the next is
read, as FCC does — :func:`decode_envelope`, then :func:`group_of` for each top-level
key, :func:`iter_items` / :func:`parse_flag` / :func:`parse_sid` for its value, then
:func:`check_session_rules` on the :class:`SessionFlags` read. Every decoding failure is
a :class:`~provkit.errors.BundleDecodeError` whose ``fcc_status`` is the ``ReturnStatus``
FCC answers and whose ``item`` is the name FCC appends to the InfoMessage prefix (empty
for parse failures, which FCC reports as ``General error:``). Names are compared as FCC
compares them (:func:`fcc_name_matches`).

See ``docs/wire-format.md`` for the byte-level description.
"""

from __future__ import annotations

from provkit.errors import BundleDecodeError
from provkit.wire._bundle_decode import (
    ITEM_GROUPS,
    Envelope,
    decode_envelope,
    group_of,
    iter_items,
    parse_flag,
    parse_group,
    parse_rbp,
    parse_sid,
)
from provkit.wire._bundle_encode import BundleTemplate, check_bundle, check_name, encode_bundle
from provkit.wire._bundle_model import (
    CERTIFICATE_CHAINS_KEY,
    CERTIFICATES_KEY,
    CONFIG_PARAMS_KEY,
    CSR_REQS_KEY,
    ECC_PRIVATE,
    ECC_PUBLIC,
    ENTROPY_KEY,
    ENTROPY_SIZE,
    KEYS_KEY,
    LOOKED_UP_BY_KEY,
    MAX_CHAIN_LENGTH,
    MAX_CSR_REQUESTS,
    MAX_TOP_LEVEL_KEYS,
    ROT_KEY,
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
from provkit.wire._fcc_names import fcc_match, fcc_name_matches, wire_bytes
from provkit.wire.session import SID_KEY, SessionFlag, SessionFlags, session_violation

__all__ = [
    "CERTIFICATES_KEY",
    "CERTIFICATE_CHAINS_KEY",
    "CONFIG_PARAMS_KEY",
    "CSR_REQS_KEY",
    "ECC_PRIVATE",
    "ECC_PUBLIC",
    "ENTROPY_KEY",
    "ENTROPY_SIZE",
    "ITEM_GROUPS",
    "KEYS_KEY",
    "LOOKED_UP_BY_KEY",
    "MAX_CHAIN_LENGTH",
    "MAX_CSR_REQUESTS",
    "MAX_TOP_LEVEL_KEYS",
    "ROT_KEY",
    "ROT_SIZE",
    "SCHEME_VERSION",
    "SID_KEY",
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
    "Envelope",
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
    "fcc_match",
    "fcc_name_matches",
    "group_of",
    "iter_items",
    "parse_flag",
    "parse_group",
    "parse_rbp",
    "parse_sid",
    "wire_bytes",
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

    Keys are read as FCC's wire-order loop reads them: by FCC's name rule, item groups
    adding up, the first ``Entropy``/``ROT`` counting (FCC looks them up by key), the last
    ``Verify``/``Disable``/``KpAlvSess``/``SID`` winning.

    Args:
        data: the CBOR body of an ``mbedprov`` frame.

    Returns:
        The decoded bundle; ``decode_bundle(encode_bundle(b)) == b``.

    Raises:
        BundleDecodeError: with the ``fcc_status`` FCC answers for the first defect.
    """
    envelope = decode_envelope(data)
    entropy_value = envelope.lookup(ENTROPY_KEY)
    rot_value = envelope.lookup(ROT_KEY)
    entropy = None if entropy_value is None else parse_rbp(ENTROPY_KEY, entropy_value)
    rot = None if rot_value is None else parse_rbp(ROT_KEY, rot_value)
    items: dict[str, list[object]] = {group: [] for group in (*ITEM_GROUPS, CSR_REQS_KEY)}
    session = SessionFlags()
    csr_value: object | None = None
    for key, value in envelope:
        group = group_of(key)
        if group is None:
            continue
        if group in ITEM_GROUPS:
            items[group].extend(iter_items(group, value, envelope.source))
        elif group == CSR_REQS_KEY:
            csr_value = value  # FCC parses the last one, after the session rules
        elif group == SID_KEY:
            session = session.with_sid(parse_sid(value))
        else:
            session = session.with_flag(group, parse_flag(group, value))
    check_session_rules(session, csr_requested=csr_value is not None)
    if csr_value is not None:
        items[CSR_REQS_KEY] = list(iter_items(CSR_REQS_KEY, csr_value, envelope.source))
    return Bundle(
        keys=tuple(i for i in items[KEYS_KEY] if isinstance(i, KeyItem)),
        certificates=tuple(i for i in items[CERTIFICATES_KEY] if isinstance(i, CertificateItem)),
        certificate_chains=tuple(
            i for i in items[CERTIFICATE_CHAINS_KEY] if isinstance(i, CertificateChainItem)
        ),
        config_params=tuple(i for i in items[CONFIG_PARAMS_KEY] if isinstance(i, ConfigParam)),
        csr_requests=tuple(i for i in items[CSR_REQS_KEY] if isinstance(i, CsrRequest)),
        entropy=entropy,
        rot=rot,
        verify=session.verify,
        disable=session.disable,
        keep_alive=session.keep_alive,
        sid=session.sid,
    )

"""Where the factory CA's private key lives: ``keystore/fcu_key.pem``, or a key in a PKCS#11 token.

The key is looked for, first match wins:

1. the caller's choice: ``FactoryToolApi(ca_key=...)``, ``provkit --ca-key URI`` (also
   accepted after ``setup``);
2. ``certificate-authority-key`` in fcu.yml: a ``pkcs11:`` URI, or a mapping with ``uri``,
   ``pkcs11-module`` and ``pin-file``;
3. ``keystore/fcu_key.pkcs11``: the URI that ``setup`` wrote when it generated the key in a
   token (with the module's ``module-path``, never a PIN), so later commands find it;
4. ``keystore/fcu_key.pem``, the key file.

The PKCS#11 module is ``--pkcs11-module`` / ``pkcs11_module=``, else fcu.yml's
``pkcs11-module``, else the URI's ``module-path`` (or ``module-name``). The PIN is read from a
PIN file (``--pin-file`` / ``pin_file=``, else fcu.yml's ``pin-file``), else from
``$PROVKIT_PKCS11_PIN``, else from the URI's ``pin-source`` file; never from the command line.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from provkit.codes import FcuErrorCode
from provkit.crypto.hsm.signer import TokenSigner, generate_token_key
from provkit.crypto.hsm.token import TokenKeyRef, read_pin, resolve_module
from provkit.crypto.hsm.uri import Pkcs11Uri
from provkit.errors import CaError, HsmError
from provkit.factory.paths import FcuPaths, read_regular_file


@dataclass(frozen=True, slots=True)
class CaKeySource:
    """A factory CA key in a PKCS#11 token, as the user named it (no PIN inside).

    Attributes:
        uri: the key's ``pkcs11:`` URI text.
        module: the PKCS#11 module file, when not in the URI.
        pin_file: file holding the user PIN.
        origin: where the URI came from, for messages (``--ca-key``, ``fcu.yml`` …).
    """

    uri: str
    module: str | None = None
    pin_file: Path | None = None
    origin: str = "--ca-key"

    def parsed(self) -> Pkcs11Uri:
        """The parsed URI.

        Raises:
            Pkcs11UriError: 407.
        """
        return Pkcs11Uri.parse(self.uri)

    def over(self, fallback: CaKeySource | None) -> CaKeySource:
        """This source, with module and PIN file taken from ``fallback`` where this one has none."""
        if fallback is None:
            return self
        module, pin_file = self.module or fallback.module, self.pin_file or fallback.pin_file
        return replace(self, module=module, pin_file=pin_file)

    def token_ref(self) -> TokenKeyRef:
        """The key's location with its module resolved and its PIN read.

        Raises:
            HsmError: 400 (no module), 407 (URI), 408 (no PIN).
        """
        uri = self.parsed()
        return TokenKeyRef(uri, resolve_module(uri, self.module), read_pin(self.pin_file, uri))

    def reference_text(self, ref: TokenKeyRef) -> str:
        """What ``keystore/fcu_key.pkcs11`` holds for ``ref``: its URI with the module path."""
        pin_source = self.parsed().pin_source
        return str(ref.uri.replace(module_path=ref.module, module_name=None, pin_source=pin_source))


def stored_reference(paths: FcuPaths) -> CaKeySource | None:
    """The token key named by ``keystore/fcu_key.pkcs11``, if setup wrote one.

    Raises:
        CaError: 221 when the file is there but unreadable.
    """
    path = paths.ca_key_reference
    try:
        text = read_regular_file(path).decode("utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):  # no reference (or no keystore directory at all)
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise CaError.from_code(
            FcuErrorCode.CA_KEY_LOAD_FAILED, path, hint=f"{exc}; run 'provkit setup -f' to recreate the CA"
        ) from exc
    return CaKeySource(text, origin=str(path))


def resolve_source(
    paths: FcuPaths, given: CaKeySource | None, configured: CaKeySource | None
) -> CaKeySource | None:
    """The token key to use (``None``: the key file), by the order of the module docstring.

    ``given`` may carry only a module or PIN file (``uri`` empty): they then apply to the
    configured or stored key.

    Raises:
        CaError: 221 when the stored reference is unreadable.
    """
    for candidate in (given, configured, stored_reference(paths)):
        if candidate is not None and candidate.uri:
            return candidate.over(given).over(configured)
    return None


def token_signer(source: CaKeySource) -> TokenSigner:
    """Open the token key of ``source``.

    Raises:
        HsmError: 400–408.
    """
    return TokenSigner(source.token_ref())


def generate_signer(source: CaKeySource, *, replace_existing: bool) -> tuple[TokenSigner, str]:
    """Generate the CA key in the token of ``source``; return its signer and keystore reference text.

    Raises:
        HsmError: 400–409.
    """
    signer = generate_token_key(source.token_ref(), replace=replace_existing)
    return signer, source.reference_text(signer.ref)


def describe(source: CaKeySource | None) -> str:
    """A short text naming the key for messages: its URI (without module and PIN) or the key file."""
    if source is None:
        return "keystore/fcu_key.pem"
    try:
        return str(source.parsed().without_query())
    except HsmError:
        return source.origin

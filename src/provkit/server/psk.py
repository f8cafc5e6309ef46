"""The PSK store Mbed TLS consults during a handshake: registry look-ups with a small cache.

python-mbedtls calls ``store[identity]`` from the handshake (inside the event loop), so
the look-up is one indexed query plus one ECDH to open the sealed key, and its results
are cached: known identities for a while, unknown ones briefly (a peer trying identity
after identity costs one query per identity and window, not one per handshake). The
store also remembers the identity and endpoint of its last successful look-up, which the
endpoint reads after each handshake step to learn who a PSK peer is.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import Final

from provkit.crypto.keys import PrivateKey
from provkit.errors import ProvkitError
from provkit.registry import Registry, Service
from provkit.registry.credentials import open_sealed

_log = logging.getLogger(__name__)
_POSITIVE_TTL: Final = 300.0
_NEGATIVE_TTL: Final = 2.0
_CACHE_SIZE: Final = 10_000


class RegistryPskStore(Mapping[str, bytes]):
    """PSK identity → key, from the registry's recorded credentials of one service.

    Args:
        registry: where credentials are recorded.
        service: which service's credentials.
        sealing_key: the server's sealing private key.
        sealing_key_id: its id.
    """

    def __init__(
        self, registry: Registry, service: Service, sealing_key: PrivateKey, sealing_key_id: str
    ) -> None:
        self._registry = registry
        self._service = service
        self._key = sealing_key
        self._key_id = sealing_key_id
        self._cache: OrderedDict[str, tuple[float, str | None, bytes | None]] = OrderedDict()
        self._last: tuple[str, str] | None = None
        self.unknown = 0
        """How many look-ups found no credential."""

    def __getitem__(self, identity: str) -> bytes:
        now = time.monotonic()
        cached = self._cache.get(identity)
        if cached is None or cached[0] < now:
            cached = self._load(identity, now)
        _, endpoint, key = cached
        if endpoint is None or key is None:
            self.unknown += 1
            raise KeyError(identity)
        self._last = (identity, endpoint)
        return key

    def _load(self, identity: str, now: float) -> tuple[float, str | None, bytes | None]:
        entry: tuple[float, str | None, bytes | None]
        try:
            sealed = self._registry.psk.sealed(identity, self._service)
            if sealed is None:
                entry = (now + _NEGATIVE_TTL, None, None)
            else:
                key = open_sealed(self._key, self._key_id, identity, self._service, sealed)
                entry = (now + _POSITIVE_TTL, sealed.endpoint_name, key)
        except ProvkitError as exc:
            _log.warning("PSK identity %r cannot be used: %s", identity, exc)
            entry = (now + _NEGATIVE_TTL, None, None)
        self._cache[identity] = entry
        self._cache.move_to_end(identity)
        while len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return entry

    def take_last(self) -> tuple[str, str] | None:
        """Return and forget ``(identity, endpoint name)`` of the last successful look-up."""
        last, self._last = self._last, None
        return last

    def forget(self) -> None:
        """Drop the cache (credentials changed)."""
        self._cache.clear()

    def __iter__(self) -> Iterator[str]:
        # Mbed TLS only looks identities up; listing every credential is never needed.
        return iter(())

    def __len__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return f"RegistryPskStore({self._service.value}, {len(self._cache)} cached)"

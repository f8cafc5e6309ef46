"""LwM2M factory provisioning, the pure part: object registry, SenML codecs, endpoint configs.

* :mod:`provkit.lwm2m.objects` — Security /0, Server /1, Device /3 resource tables.
* :mod:`provkit.lwm2m.paths` — LwM2M path parsing as the device does it.
* :mod:`provkit.lwm2m.senml`, :mod:`~provkit.lwm2m.senml_cbor`, :mod:`~provkit.lwm2m.senml_json`
  — RFC 8428 records and codecs; :mod:`~provkit.lwm2m.strict` — the device's rules.
* :mod:`provkit.lwm2m.config` — YAML/JSON endpoint configuration, validated
  (:mod:`~provkit.lwm2m.document` reads the text).
* :mod:`provkit.lwm2m.validate` — Security/Server object rules, as Anjay checks them.
* :mod:`provkit.lwm2m.response` — the acceptor's result body.

No I/O, no ``cryptography``.
"""

from provkit.lwm2m.config import EndpointConfig, config_from_mapping, load_config_text
from provkit.lwm2m.senml import Entry, Objlnk, Record
from provkit.lwm2m.senml_cbor import decode_cbor, encode_cbor
from provkit.lwm2m.senml_json import decode_json, encode_json
from provkit.lwm2m.strict import decode_strict

__all__ = [
    "EndpointConfig",
    "Entry",
    "Objlnk",
    "Record",
    "config_from_mapping",
    "decode_cbor",
    "decode_json",
    "decode_strict",
    "encode_cbor",
    "encode_json",
    "load_config_text",
]

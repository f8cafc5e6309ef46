"""Regenerate tests/vectors/developer/: ``python tests/developer/make_vectors.py``.

Writes a developer credentials file, an update resources file in each manifest-tool
layout, and ``expected.json`` (length and SHA-256 of every value the parsers must return).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from developer.cfiles import DevCredentials, UpdateResources

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "developer"


def _digest(values: dict[str, bytes]) -> dict[str, list[object]]:
    return {name: [len(data), hashlib.sha256(data).hexdigest()] for name, data in sorted(values.items())}


def main() -> None:
    """Write the vector files."""
    VECTORS.mkdir(parents=True, exist_ok=True)
    dev = DevCredentials(manufacturer='Acme, Inc.; "dev" = test', memory_kb=524288)
    update_v1 = UpdateResources(validity_years=1)
    update_v2 = UpdateResources(validity_years=20)
    (VECTORS / "mbed_cloud_dev_credentials.c").write_text(dev.c_text())
    (VECTORS / "update_default_resources_v1.c").write_text(update_v1.c_text_v1())
    (VECTORS / "update_default_resources_v2.c").write_text(update_v2.c_text_v2())
    v1 = {k: v for k, v in update_v1.values.items() if k != "arm_uc_update_public_key"}
    v1 |= {"arm_uc_default_psk": b"", "arm_uc_default_psk_id": b""}
    v2 = {
        k: v
        for k, v in update_v2.values.items()
        if k not in ("arm_uc_default_fingerprint", "arm_uc_default_subject_key_identifier")
    }
    expected = {
        "mbed_cloud_dev_credentials.c": _digest(dev.values),
        "update_default_resources_v1.c": _digest(v1),
        "update_default_resources_v2.c": _digest(v2),
    }
    (VECTORS / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")


if __name__ == "__main__":
    main()

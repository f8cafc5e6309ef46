"""The Device Management API of ``provkit server`` (FastAPI).

The cloud side of the developer flow and of the factory: API keys, developer
certificates issued under the server's developer CA, trusted (factory) CA certificates,
first-to-claim enrollments and the device directory, on the Device Management v3 paths and
JSON that ``provkit developer`` and Device Management SDKs use. See ``docs/server.md``.
"""

from provkit.server.api.app import create_app
from provkit.server.api.auth import AdminKey, AnyKey, Principal, authenticate, require
from provkit.server.api.context import ApiContext
from provkit.server.api.developer import DeveloperAuthority, ServerIdentity

__all__ = [
    "AdminKey",
    "AnyKey",
    "ApiContext",
    "DeveloperAuthority",
    "Principal",
    "ServerIdentity",
    "authenticate",
    "create_app",
    "require",
]

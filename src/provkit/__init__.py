"""provkit: provision IoT devices with their identity, in the factory and in development.

The library is organised in layers (see ``docs/architecture.md``): pure wire formats and
the parameter catalog, crypto helpers, the factory side (FCU) and the device side
(FCC + KCM), transports, the production line, and a thin CLI.
"""

from importlib.metadata import PackageNotFoundError, version

from provkit.errors import ProvkitError

try:
    __version__ = version("provkit")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["ProvkitError", "__version__"]

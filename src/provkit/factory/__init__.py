"""The factory side (FCU): ``fcu.yml``, the factory CA, device bundles and response checks.

``from provkit.factory import FactoryToolApi`` replaces ``from fcu import FactoryToolApi``.
"""

from __future__ import annotations

from provkit.factory.api import FactoryToolApi
from provkit.factory.ca import FactoryCa
from provkit.factory.results import (
    CsrPending,
    DeviceConfigurationRequest,
    DeviceResponseStatus,
    ErrorInfo,
    SetupStatus,
    WarningInfo,
)

__all__ = [
    "CsrPending",
    "DeviceConfigurationRequest",
    "DeviceResponseStatus",
    "ErrorInfo",
    "FactoryCa",
    "FactoryToolApi",
    "SetupStatus",
    "WarningInfo",
]

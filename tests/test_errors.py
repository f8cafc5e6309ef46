"""The exception tree: one base, codes on every error, built-in bases where they fit."""

from __future__ import annotations

import inspect

import provkit.errors as errors_module
from provkit.codes import FccStatus, FcuErrorCode, FtcdCommStatus, FtErrorCode
from provkit.errors import (
    BundleDecodeError,
    ConfigError,
    FactoryError,
    FrameError,
    ItemNotFoundError,
    ProvkitError,
    TransportTimeout,
)


def test_every_error_derives_from_the_base() -> None:
    """All exception classes in provkit.errors are ProvkitError subclasses."""
    classes = [
        obj
        for _, obj in inspect.getmembers(errors_module, inspect.isclass)
        if issubclass(obj, BaseException) and obj.__module__ == errors_module.__name__
    ]
    assert len(classes) > 20
    assert all(issubclass(cls, ProvkitError) for cls in classes)


def test_every_error_class_is_drawn_in_the_module_docstring() -> None:
    """The tree in the docstring names every class, so it cannot drift."""
    doc = errors_module.__doc__ or ""
    for name, obj in inspect.getmembers(errors_module, inspect.isclass):
        if issubclass(obj, ProvkitError) and obj.__module__ == errors_module.__name__:
            assert name in doc, name


def test_codes_travel_with_the_errors() -> None:
    """Errors carry the documented number of the party that reports them."""
    assert BundleDecodeError("x", fcc_status=FccStatus.BUNDLE_INVALID_SCHEME).code == 24
    assert FrameError("x", comm_status=FtcdCommStatus.INCONSISTENT_MESSAGE_SIGNATURE).code == 8
    assert ConfigError("x").code == FcuErrorCode.VALIDATION_ERROR
    assert TransportTimeout("x").code == FtErrorCode.TOKEN_TIMEOUT
    assert ItemNotFoundError("gone", item="mbed.EndpointName").code == 5


def test_builtin_bases_keep_foreign_handlers_working() -> None:
    """Callers catching ValueError/TimeoutError/KeyError still catch provkit errors."""
    assert isinstance(BundleDecodeError("x"), ValueError)
    assert isinstance(TransportTimeout("x"), TimeoutError)
    assert isinstance(ItemNotFoundError("x"), KeyError)
    assert str(ItemNotFoundError("no such item")) == "no such item"


def test_factory_error_from_code_uses_the_documented_text() -> None:
    """FactoryError.from_code fills the FCU message template."""
    error = FactoryError.from_code(FcuErrorCode.CA_CERT_NOT_FOUND, "keystore/fcu.crt")
    assert error.code == 210
    assert error.message == "CA certificate file keystore/fcu.crt not found. Please run setup and try again"


def test_device_refusals_are_in_the_tree() -> None:
    """The device side refuses with DeviceError (FCC's InfoMessage) and Lwm2mRefused (acceptor status)."""
    from provkit.codes import KcmStatus
    from provkit.errors import DeviceError, Lwm2mRefused, StorageError

    refusal = DeviceError.of(FccStatus.ITEM_NOT_EXIST, "mbed.EndpointName")
    assert isinstance(refusal, ProvkitError)
    assert (refusal.code, refusal.message, refusal.respond) == (
        25,
        "Item does not exist:mbed.EndpointName",
        True,
    )
    stored = DeviceError.from_kcm(StorageError("x", kcm_status=KcmStatus.FILE_EXIST, item="mbed.X"))
    assert (stored.fcc_status, stored.message) == (
        FccStatus.KCM_FILE_EXIST_ERROR,
        "Data already exists:mbed.X",
    )
    assert not DeviceError.of(FccStatus.FACTORY_DISABLED_ERROR, respond=False).respond
    lwm2m = Lwm2mRefused("no such object", accept_status=3)
    assert isinstance(lwm2m, ProvkitError) and (lwm2m.code, lwm2m.accept_status) == (5013, 3)


def _every_module() -> list[object]:
    import importlib
    import pkgutil

    import provkit

    found = []
    for info in pkgutil.walk_packages(provkit.__path__, "provkit."):
        if ".migrations." in info.name or info.name.endswith("__main__"):
            continue
        found.append(importlib.import_module(info.name))
    return found


def test_every_public_exception_anywhere_is_in_the_tree() -> None:
    """No module defines a public exception outside ProvkitError (private ones stay in their module)."""
    stray = []
    for module in _every_module():
        for name, obj in inspect.getmembers(module, inspect.isclass):
            defined_here = obj.__module__ == getattr(module, "__name__", None)
            public = defined_here and not name.startswith("_")
            if public and issubclass(obj, BaseException) and not issubclass(obj, ProvkitError):
                stray.append(f"{obj.__module__}.{name}")
    assert not stray


_RANGES = {
    "FCU": range(100, 410),
    "FT": range(1000, 1024),
    "PROVKIT": range(4000, 4200),
    "LWM2M": range(5000, 5100),
    "DEVELOPER": range(6000, 6100),
    "SMP": range(7000, 7300),
    "SERVER": range(8000, 8100),
    "API": range(8400, 8500),
}


def test_every_code_is_qualified_by_its_space() -> None:
    """Each error class's default code lies in its space's range; messages show ``SPACE-code``."""
    from provkit.errors import CodeSpace

    _every_module()
    pending: list[type[ProvkitError]] = [ProvkitError]
    checked = 0
    while pending:
        kind = pending.pop()
        pending.extend(kind.__subclasses__())
        assert isinstance(kind.space, CodeSpace)
        if kind.default_code is not None and str(kind.space) in _RANGES:
            assert kind.default_code in _RANGES[str(kind.space)], (kind, kind.space, kind.default_code)
            checked += 1
    assert checked > 40
    assert TransportTimeout("slow").qualified_code == f"FT-{int(FtErrorCode.TOKEN_TIMEOUT)}"
    assert BundleDecodeError("bad", fcc_status=FccStatus.BUNDLE_ERROR).qualified_code == (
        f"FCC-{int(FccStatus.BUNDLE_ERROR)}"
    )
    assert ProvkitError("no code").qualified_code is None


def test_every_code_space_is_documented() -> None:
    """docs/errors.md names every code space."""
    from pathlib import Path

    from provkit.errors import CodeSpace

    text = (Path(__file__).resolve().parents[1] / "docs" / "errors.md").read_text(encoding="utf-8")
    assert all(f"`{space}`" in text for space in CodeSpace)

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

"""The provisioning flow, written once: prepare → exchange → (CSR → exchange) → check → outcome.

Every way provkit provisions a device runs through here: ``provkit inject`` and the demo
(:func:`provision_one`), the factory line (:func:`deliver` of a prepared request), the
developer flow and LwM2M delivery (their own :class:`Conversation`). What differs between
them is only the conversation — which messages go to the device, under which token, and
how its last answer is read; the flow around it is the same:

* :func:`converse` runs one conversation over an open link: the first message, each
  follow-up built from the device's answer (the ``by_device`` certificate message, built
  from the CSR), and the verdict on the last answer. A link that carries no answers (a
  file) gets the messages only, and a conversation that needs answers is refused on it
  before anything is written.
* :func:`deliver` opens a link to a :class:`~provkit.transport.spec.LinkTarget` for each
  try, retries transport failures on a new connection as the
  :class:`~provkit.transport.link.LinkSettings` say, and returns a :class:`Delivery`
  instead of raising: an answer with its verdict, or the error of the last try.
* :func:`provision_one` prepares a device's bundle with the FCU and delivers it, and
  reports the outcome the way the factory tool demo does (:class:`ProvisionOutcome`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from provkit.codes import FtErrorCode
from provkit.errors import (
    ConnectFailed,
    DeviceResponseError,
    ProvkitError,
    TransportError,
)
from provkit.factory.results import DeviceConfigurationRequest, DeviceResponseStatus
from provkit.transport.errors import DeviceStatusError
from provkit.transport.link import DEFAULT_LINK_SETTINGS, DeviceLink, LinkSettings
from provkit.wire.framing import FCC_TOKEN

if TYPE_CHECKING:
    from provkit.factory.api import FactoryToolApi
    from provkit.transport.spec import LinkTarget

_log = logging.getLogger(__name__)

V = TypeVar("V")
V_co = TypeVar("V_co", covariant=True)

SUCCESS_MESSAGE = "Command executed successfully"
"""The factory tool demo's message for a device provisioned (status 0)."""


class Conversation(Protocol[V_co]):
    """What one device is sent, and how its last answer is read.

    A conversation may keep state between :meth:`follow_up` calls; :meth:`first` starts
    it over (a retry on a new connection begins with the first message again).
    """

    @property
    def token(self) -> bytes:
        """The frame token the messages travel under."""
        ...

    @property
    def needs_answers(self) -> bool:
        """Whether a later message is built from the device's answer (no file delivery then)."""
        ...

    def first(self) -> bytes:
        """The first message (and start over)."""
        ...

    def follow_up(self, answer: bytes) -> bytes | None:
        """The next message, built from the device's answer to the previous one; ``None`` when done."""
        ...

    def verdict(self, answer: bytes) -> V_co:
        """Read the device's answer to the last message.

        Raises:
            ProvkitError: the answer is not what the device should send.
        """
        ...


@dataclass(frozen=True, slots=True)
class Delivery(Generic[V]):
    """How delivering one conversation went.

    Attributes:
        response: the device's answer to the last message (``None`` when the link carries
            no answers or none came; set with ``error`` when the verdict refused it).
        verdict: what the conversation read in it (``None`` when not judged or no answer).
        tries: connections opened, retries included.
        error: why the delivery failed (the last try's error).
        reached: whether a message may have reached the device; ``False`` only when every
            try failed to connect (the device surely holds nothing of it).
    """

    response: bytes | None
    verdict: V | None = None
    tries: int = 1
    error: ProvkitError | None = None
    reached: bool = True


def converse(
    conversation: Conversation[V], link: DeviceLink, *, timeout_s: float | None = None, judge: bool = True
) -> tuple[bytes | None, V | None]:
    """Run ``conversation`` once over an open ``link``.

    Args:
        conversation: the messages and how to read the answer.
        link: the link, opened by its first exchange and left open.
        timeout_s: how long each exchange waits for the answer (``None``: the link's own).
        judge: read the last answer with :meth:`Conversation.verdict`; otherwise only return it.

    Returns:
        The device's last answer and the verdict on it; ``(None, None)`` over a link that
        carries no answers.

    Raises:
        TransportError: the link failed (1000 for a conversation that needs answers over a
            link that carries none).
        ProvkitError: a follow-up could not be built or the answer is unacceptable.
    """
    if conversation.needs_answers and not link.returns_responses:
        raise TransportError(
            FtErrorCode.GENERAL.format(
                "this provisioning builds its next message from the device's answer (by_device key "
                "generation): it needs a live device, not a file"
            ),
            code=FtErrorCode.GENERAL,
        )
    token = conversation.token
    message: bytes | None = conversation.first()
    answer = b""
    while message is not None:
        answer = link.exchange(message, timeout_s=timeout_s, token=token)
        _log.debug("sent %d bytes, device answered %d bytes", len(message), len(answer))
        message = conversation.follow_up(answer) if link.returns_responses else None
    if not link.returns_responses:
        return None, None
    return answer, conversation.verdict(answer) if judge else None


def deliver(
    conversation: Conversation[V],
    target: LinkTarget,
    settings: LinkSettings = DEFAULT_LINK_SETTINGS,
    *,
    judge: bool = True,
    sleep: Callable[[float], None] = time.sleep,
) -> Delivery[V]:
    """Run ``conversation`` with a device, on a new link for every try; never raises a provkit error.

    A transport failure (no connection, no answer in time, the connection dropped, a
    corrupted answer) is tried again, starting the conversation over, up to
    ``settings.retries`` times with a growing pause. A device that answers — with a
    non-zero transport status, an FCC error, or something that is no response — is not,
    because its answer is the outcome. An answer the verdict refuses is kept in the
    delivery with the verdict's error.

    Args:
        conversation: the messages and how to read the answer.
        target: where the device is.
        settings: timeouts and retries.
        judge: read the answer (see :func:`converse`); a caller that records the raw
            answer first (the factory line) judges it itself.
        sleep: how to pause between tries.
    """
    delay = settings.retry_delay_s
    tries = 0
    reached = False
    while True:
        tries += 1
        try:
            link = target.open(settings)
            try:
                response, _ = converse(conversation, link, timeout_s=settings.timeout_s, judge=False)
            finally:
                link.close()
        except DeviceStatusError as exc:  # the device answered: that is its outcome
            return Delivery(None, None, tries, exc)
        except ProvkitError as exc:
            reached = reached or not isinstance(exc, ConnectFailed)
            if not isinstance(exc, TransportError) or tries > settings.retries:
                return Delivery(None, None, tries, exc, reached)
            _log.info("%s: %s; retrying in %.1f s", target, exc, delay)
            sleep(delay)
            delay *= 2
            continue
        if not judge or response is None:
            return Delivery(response, None, tries)
        try:
            return Delivery(response, conversation.verdict(response), tries)
        except ProvkitError as exc:
            return Delivery(response, None, tries, exc)


class OneMessage(Generic[V]):
    """A conversation of one message, whose answer ``read`` judges (developer bundles, LwM2M blobs).

    Args:
        token: the frame token.
        message: the message.
        read: the verdict on the device's answer (raises a ``ProvkitError`` to refuse it).
    """

    needs_answers = False

    def __init__(self, token: bytes, message: bytes, read: Callable[[bytes], V]) -> None:
        self.token = token
        self.message = message
        self._read = read

    def first(self) -> bytes:
        """The message."""
        return self.message

    def follow_up(self, answer: bytes) -> None:
        """Nothing follows: the message is the whole session."""
        del answer

    def verdict(self, answer: bytes) -> V:
        """``read(answer)``."""
        return self._read(answer)


class FcuConversation:
    """A prepared device configuration request and, in ``by_device`` mode, its certificate message.

    After a delivery, :attr:`request` is the last request sent: the certificate message
    with the device certificate it carries.

    Args:
        api: the FCU that signs the CSR and checks the answer.
        request: the prepared (first) request.
    """

    token = FCC_TOKEN

    def __init__(self, api: FactoryToolApi, request: DeviceConfigurationRequest) -> None:
        self.api = api
        self.initial = request
        self.request = request

    @property
    def needs_answers(self) -> bool:
        """Whether the certificate message is built from the device's CSR."""
        return self.initial.needs_csr_response

    def first(self) -> bytes:
        """The prepared bundle (the CSR request in ``by_device`` mode)."""
        self.request = self.initial
        return self.request.config_data

    def follow_up(self, answer: bytes) -> bytes | None:
        """In ``by_device`` mode, the certificate message signed from the CSR in ``answer``.

        Raises:
            DeviceResponseError: the device refused the CSR request (code = its status).
            FactoryError: 180 (no CSR), 230 (bad CSR), 110 (protocol).
        """
        if not self.request.needs_csr_response:
            return None
        self.request = self.api.complete_device_configuration(self.request, answer)
        return self.request.config_data

    def verdict(self, answer: bytes) -> DeviceResponseStatus:
        """The FCU's reading of the device's answer to the last bundle.

        Raises:
            ResponseDecodeError: 180 when a field is missing. FactoryError: 110.
        """
        return self.api.verify_device_response(self.request.endpoint_name, answer)


@dataclass(frozen=True, slots=True)
class ProvisionOutcome:
    """How provisioning one device went, as the factory tool demo reports it.

    Attributes:
        status: 0; 1004 when the device refused (its own status is in ``device``); else the
            error's code (transport 1000–1023, FCU 100–390, …).
        message: what happened.
        device: the device's answer, when one was received.
        request: the last request built (the certificate message in ``by_device`` mode).
        error: the error, for failures other than a device's refusal.
        hint: what to fix, when the library knows.
        tries: connections opened.
    """

    status: int
    message: str
    device: DeviceResponseStatus | None = None
    request: DeviceConfigurationRequest | None = None
    error: ProvkitError | None = None
    hint: str | None = None
    tries: int = 0

    @property
    def ok(self) -> bool:
        """Whether the device is provisioned (or, over a file link, the bundle written)."""
        return self.status == 0

    @property
    def enrollment_id(self) -> str | None:
        """The first-to-claim enrollment id, when the configuration asks for one and the bundle went out."""
        return None if self.request is None or self.error is not None else self.request.enrollment_id

    def to_json(self) -> dict[str, Any]:
        """The factory tool demo's status object: ``status``, ``message`` and ``deviceResponse``."""
        body: dict[str, Any] = {"status": self.status, "message": self.message}
        if self.device is not None:
            body["deviceResponse"] = {
                "status": self.device.status,
                "message": self.device.message,
                "warnings": [warning.message for warning in self.device.warnings],
            }
        return body

    @classmethod
    def failed(
        cls, error: ProvkitError, request: DeviceConfigurationRequest | None = None, tries: int = 0
    ) -> ProvisionOutcome:
        """The outcome of a failure: a device's refusal is 1004 with its status, else the error's code."""
        if isinstance(error, DeviceResponseError):
            code = error.code or 0
            failed = FtErrorCode.DEVICE_EXECUTION_FAILED
            return cls(
                int(failed),
                failed.format(code),
                DeviceResponseStatus(code, error.message),
                request,
                tries=tries,
            )
        code = error.code if error.code is not None else int(FtErrorCode.GENERAL)
        return cls(code, error.message, None, request, error, error.hint, tries)

    @classmethod
    def answered(
        cls, status: DeviceResponseStatus | None, request: DeviceConfigurationRequest, tries: int
    ) -> ProvisionOutcome:
        """The outcome of a device's answer (``None`` over a file link: the bundle was written)."""
        if status is None or status.ok:
            return cls(0, SUCCESS_MESSAGE, status, request, tries=tries)
        failed = FtErrorCode.DEVICE_EXECUTION_FAILED
        return cls(int(failed), failed.format(status.status), status, request, tries=tries)


def deliver_request(
    api: FactoryToolApi,
    request: DeviceConfigurationRequest,
    target: LinkTarget,
    settings: LinkSettings = DEFAULT_LINK_SETTINGS,
) -> ProvisionOutcome:
    """Deliver a prepared request (and its ``by_device`` certificate message) and judge the answer."""
    conversation = FcuConversation(api, request)
    delivery = deliver(conversation, target, settings)
    if delivery.error is not None:
        return ProvisionOutcome.failed(delivery.error, conversation.request, delivery.tries)
    return ProvisionOutcome.answered(delivery.verdict, conversation.request, delivery.tries)


def provision_one(
    api: FactoryToolApi,
    target: LinkTarget,
    endpoint_name: str,
    serial_number: str,
    *,
    device_keys_location: str | os.PathLike[str] | None = None,
    settings: LinkSettings = DEFAULT_LINK_SETTINGS,
) -> ProvisionOutcome:
    """Prepare one device's bundle, deliver it and judge the answer; never raises a provkit error.

    Args:
        api: the FCU.
        target: where the device is (``parse_link("tcp:10.0.0.5:7777")``).
        endpoint_name: the device's endpoint name.
        serial_number: the device's serial number.
        device_keys_location: folder of externally supplied keys and ``entropy.bin``.
        settings: timeouts and retries.

    Returns:
        Status 0 on success; 1004 when the device refused; the FCU or transport code otherwise.
    """
    try:
        request = api.prepare_device_configuration(endpoint_name, serial_number, device_keys_location)
    except ProvkitError as error:
        return ProvisionOutcome.failed(error)
    for warning in request.warnings:
        _log.warning("FCU warning %d: %s", warning.code, warning.message)
    return deliver_request(api, request, target, settings)

"""The one provisioning flow: conversations, deliveries with retries, outcomes."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from provkit.codes import FtErrorCode
from provkit.errors import ConnectFailed, ProvkitError, TransportError
from provkit.factory.api import FactoryToolApi
from provkit.factory.provision import converse, deliver, provision_one
from provkit.transport.agent import DeviceAgent, Reply
from provkit.transport.errors import DeviceStatusError
from provkit.transport.link import LinkSettings
from provkit.transport.servers import TcpAgentServer
from provkit.transport.spec import FileTarget, TcpTarget
from provkit.wire.framing import FCC_TOKEN

pytestmark = pytest.mark.integration


class Echo:
    """A conversation of fixed messages whose verdict is the upper-cased answer (or a refusal)."""

    token = FCC_TOKEN

    def __init__(self, *messages: bytes, needs_answers: bool = False, refuse: bool = False) -> None:
        self.messages = messages
        self.needs_answers = needs_answers
        self.refuse = refuse
        self.starts = 0
        self.answers: list[bytes] = []
        self._next = 0

    def first(self) -> bytes:
        self.starts += 1
        self._next = 1
        return self.messages[0]

    def follow_up(self, answer: bytes) -> bytes | None:
        self.answers.append(answer)
        if self._next >= len(self.messages):
            return None
        self._next += 1
        return self.messages[self._next - 1]

    def verdict(self, answer: bytes) -> str:
        if self.refuse:
            raise ProvkitError("no thanks", code=42)
        return answer.decode()


def _agent(handler: object) -> TcpAgentServer:
    return TcpAgentServer(DeviceAgent({FCC_TOKEN: handler}, read_timeout_s=5.0), "127.0.0.1", 0)  # type: ignore[dict-item]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_conversation_runs_its_follow_ups_on_one_connection() -> None:
    """Each follow-up is built from the previous answer; the verdict reads the last answer."""
    with _agent(lambda m: Reply(m.upper(), session_finished=m == b"c")) as server:
        conversation = Echo(b"a", b"b", b"c")
        delivery = deliver(conversation, TcpTarget(*server.address))
    assert (delivery.response, delivery.verdict, delivery.tries, delivery.error) == (b"C", "C", 1, None)
    assert conversation.answers == [b"A", b"B", b"C"]


def test_transport_failures_are_retried_from_the_first_message() -> None:
    """No connection: every try starts the conversation over, pauses double, nothing was reached."""
    pauses: list[float] = []
    conversation = Echo(b"a")
    settings = LinkSettings(connect_timeout_s=2, retries=2, retry_delay_s=0.05)
    delivery = deliver(conversation, TcpTarget("127.0.0.1", _closed_port()), settings, sleep=pauses.append)
    assert isinstance(delivery.error, ConnectFailed) and delivery.error.code == FtErrorCode.TCP_CONNECT_FAILED
    assert (delivery.tries, delivery.reached, delivery.response) == (3, False, None)
    assert conversation.starts == 3 and pauses == [0.05, 0.1]


def test_a_device_that_answers_a_failure_is_not_retried() -> None:
    """A non-zero transport status is the device's answer: one try, the error kept, no response."""
    with _agent(lambda m: None) as server:
        delivery = deliver(Echo(b"a"), TcpTarget(*server.address), LinkSettings(retries=3))
    assert isinstance(delivery.error, DeviceStatusError) and delivery.error.code == 1001
    assert delivery.tries == 1 and delivery.reached


def test_an_answer_the_verdict_refuses_is_kept_with_the_error() -> None:
    """The response survives a refusing verdict, so a line can record what the device said."""
    with _agent(lambda m: m.upper()) as server:
        delivery = deliver(Echo(b"x", refuse=True), TcpTarget(*server.address))
        unjudged = deliver(Echo(b"y", refuse=True), TcpTarget(*server.address), judge=False)
    assert delivery.response == b"X" and delivery.error is not None and delivery.error.code == 42
    assert (unjudged.response, unjudged.verdict, unjudged.error) == (b"Y", None, None)


def test_a_file_gets_the_first_message_only_and_no_verdict(tmp_path: Path) -> None:
    """Over a file nothing comes back: no follow-up, no verdict, success."""
    delivery = deliver(Echo(b"one", b"two"), FileTarget(tmp_path / "out.bin"))
    assert (delivery.response, delivery.verdict, delivery.error) == (None, None, None)
    assert b"one" in (tmp_path / "out.bin").read_bytes() and b"two" not in (tmp_path / "out.bin").read_bytes()


def test_a_conversation_needing_answers_is_refused_on_a_file_before_writing(tmp_path: Path) -> None:
    """by_device cannot go to a file: 1000, and the file is not created."""
    link = FileTarget(tmp_path / "out.bin").open()
    with pytest.raises(TransportError) as info:
        converse(Echo(b"csr", needs_answers=True), link)
    assert info.value.code == FtErrorCode.GENERAL and "live device" in info.value.message
    assert not (tmp_path / "out.bin").exists()


def test_provision_one_reports_a_preparation_failure(tmp_path: Path) -> None:
    """An FCU that cannot prepare (no fcu.yml) is the outcome, with its FCU code; nothing is sent."""
    outcome = provision_one(FactoryToolApi(home_dir=tmp_path), FileTarget(tmp_path / "x.bin"), "ep", "sn")
    assert not outcome.ok and outcome.status == 190 and outcome.request is None
    assert outcome.to_json() == {"status": 190, "message": outcome.message}
    assert not (tmp_path / "x.bin").exists()

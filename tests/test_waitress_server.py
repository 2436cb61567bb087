"""The waitress server as launchers/waitress.py builds it, in process: its queue
warning said seldom, and its event loop waiting for a request's thread that is
sending instead of polling again at once.

Served for real under load in tests/test_contract.py, tests/test_slow_clients.py
and tests/test_shutdown.py.
"""

from __future__ import annotations

import logging
import socket
import threading

import pytest

from app import create_app
from launchers import waitress, waitress_parser
from settings import load_settings
from tests.support import SECRET, clean_env, free_port


class Lines:
    def __init__(self) -> None:
        self.said: list[str] = []

    def warning(self, message: str, *args: object) -> None:
        self.said.append(message % args)


def test_the_queue_warning_is_said_at_once_then_once_a_period_with_the_deepest_queue():
    now = [100.0]
    lines = Lines()
    warning = waitress.QueueWarning(lines, threads=4, every=10.0, clock=lambda: now[0])
    warning.warning("Task queue depth is %d", 1)
    for depth in (3, 7, 2):
        now[0] += 1
        warning.warning("Task queue depth is %d", depth)
    assert len(lines.said) == 1 and lines.said[0].startswith("Task queue depth is 1: 1 request")
    now[0] = 110.0
    warning.warning("Task queue depth is %d", 5)
    assert len(lines.said) == 2
    assert lines.said[1].startswith("Task queue depth is 7: 4 request(s) waited")
    assert "4 threads (WEB_THREADS)" in lines.said[1]


def test_the_server_has_our_channel_and_queue_warning():
    settings = load_settings(
        clean_env(APP_ENV="production", SECRET_KEY=SECRET, PORT=free_port()), dotenv_path=None
    )
    app = create_app({"APP_ENV": "testing"})
    server = waitress.make_server(settings, app)
    try:
        assert server.channel_class.parser_class.__name__ == "StrictParser"
        # which refuses the heads app.limits refuses: the app leaves them to it
        assert app.extensions["request_layer"].server_checks_head is True
        queue = server.task_dispatcher.queue_logger
        assert isinstance(queue, waitress.QueueWarning)
        assert queue.logger is logging.getLogger("waitress.queue")
        assert queue.threads == settings.threads
    finally:  # as launchers/waitress.py stops it: its threads, its sockets and trigger
        server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)
        server.asyncore.close_all(server._map)


class ObservedLock:
    """A reentrant lock, as waitress's, that says when a thread starts waiting for it
    while another holds it."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.holder: int | None = None
        self.depth = 0
        self.waited = threading.Event()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if blocking and self.holder not in (None, threading.get_ident()):
            self.waited.set()
        got = self.lock.acquire(blocking, timeout)
        if got:
            self.holder = threading.get_ident()
            self.depth += 1
        return got

    def release(self) -> None:
        self.depth -= 1
        if not self.depth:
            self.holder = None
        self.lock.release()

    def _is_owned(self) -> bool:  # what threading.Condition asks before notify()
        return self.holder == threading.get_ident()

    __enter__ = acquire

    def __exit__(self, *exc: object) -> None:
        self.release()


class Server:
    """What a channel asks of its server here."""

    def __init__(self) -> None:
        self.active_channels: dict[int, object] = {}

    def pull_trigger(self) -> None:
        pass


@pytest.fixture
def channel():
    from waitress.adjustments import Adjustments

    ours, client = socket.socketpair()
    client.settimeout(10)
    channel = waitress_parser.channel_class()(Server(), ours, ("127.0.0.1", 1), Adjustments(), {})
    try:
        yield channel, client
    finally:
        channel.del_channel()
        ours.close()
        client.close()


def holding_the_output_lock(channel, release: threading.Event) -> threading.Thread:
    """A request's thread with data left to send, holding the channel's output lock
    until ``release`` is set (or 10 s pass)."""
    holding = threading.Event()

    def request_thread() -> None:
        with channel.outbuf_lock:
            channel.outbufs[-1].append(b"left to send")
            channel.total_outbufs_len += len(b"left to send")
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=request_thread)
    thread.start()
    assert holding.wait(10)
    return thread


def test_the_loop_waits_for_a_sending_thread_then_sends_what_it_left(channel):
    """waitress's loop gave up on a held output lock and polled again at once, holding
    the GIL the sending thread needed: now it waits for the lock, then sends."""
    channel, client = channel
    lock = ObservedLock()
    channel.outbuf_lock = threading.Condition(lock)
    channel.requests = ["a request in flight"]
    channel.send_wait = 30.0  # far more than the test needs: it never waits on time
    thread = holding_the_output_lock(channel, release=lock.waited)  # lets go once waited for
    channel._flush_some_if_lockable()
    thread.join(10)
    assert channel.total_outbufs_len == 0
    assert client.recv(100) == b"left to send"


def test_the_loop_stops_waiting_for_a_thread_that_keeps_the_lock(channel):
    """Past ``send_wait`` the loop goes on with its other connections, sending nothing."""
    channel, client = channel
    channel.requests = ["a request in flight"]
    channel.send_wait = 0.01
    release = threading.Event()
    thread = holding_the_output_lock(channel, release)
    try:
        channel._flush_some_if_lockable()
        assert channel.total_outbufs_len == len(b"left to send")  # nothing was sent
    finally:
        release.set()
        thread.join(10)

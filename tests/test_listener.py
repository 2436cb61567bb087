"""launchers/listener.py on real sockets in this process, and when gunicorn may use it."""

from __future__ import annotations

import socket
import sys
from types import SimpleNamespace

import pytest

from launchers import listener
from launchers.gunicorn import listeners_close_with

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a Linux filter")


@pytest.fixture
def listening():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    try:
        yield sock
    finally:
        sock.close()


def connect(port: int, timeout: float) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


@linux_only
def test_new_connections_are_turned_away_and_the_queued_one_is_still_accepted(listening):
    port = listening.getsockname()[1]
    queued = connect(port, 2)
    queued.sendall(b"hello")
    assert listener.is_queued(listening)
    assert listener.stop_queueing(listening)
    with pytest.raises(TimeoutError):  # its SYN dropped: no answer, not a refusal
        connect(port, 0.3)
    accepted, _ = listening.accept()
    assert accepted.recv(5) == b"hello"
    assert listener.wait_until_drained(listening, limit=0.5)
    assert not listener.is_queued(listening)
    accepted.close()
    queued.close()


def test_a_queue_nobody_accepts_is_waited_for_only_up_to_the_limit(listening):
    queued = connect(listening.getsockname()[1], 2)
    try:
        assert not listener.wait_until_drained(listening, limit=0.1)
    finally:
        queued.close()


@linux_only
def test_this_processs_listening_socket_is_found_by_its_port(listening):
    port = listening.getsockname()[1]
    found = listener.listening_sockets(port)
    try:
        assert len(found) == 1 and found[0].getsockname() == listening.getsockname()
    finally:
        for sock in found:
            sock.close()
    assert listening.fileno() >= 0  # the original is untouched


@linux_only
def test_a_connection_counts_as_unread_until_the_server_reads_from_it(listening):
    port = listening.getsockname()[1]
    with connect(port, 2) as client:
        accepted, _ = listening.accept()
        with accepted:
            assert listener.never_read(accepted)  # connected, nothing sent yet
            assert listener.unread_connections(port) == 1
            client.sendall(b"GET / HTTP/1.1\r\n")
            assert not listener.wait_until_read(port, limit=0.05)  # in the kernel, unread
            assert accepted.recv(3) == b"GET"  # the server has begun reading
            assert not listener.never_read(accepted)
            assert listener.wait_until_read(port, limit=0.5)
    assert listener.unread_connections(port) == 0  # the listener itself is not counted


@linux_only
def test_a_connection_the_server_has_read_all_of_is_not_unread(listening):
    port = listening.getsockname()[1]
    with connect(port, 2) as client, listening.accept()[0] as accepted:
        client.sendall(b"ping")
        assert accepted.recv(4) == b"ping"
        assert not listener.never_read(accepted)  # an idle keep-alive connection
        assert listener.unread_connections(port) == 0


def arbiter(reexec_pid=0, master_pid=0, systemd=False, reuse_port=False) -> SimpleNamespace:
    cfg = SimpleNamespace(reuse_port=reuse_port)
    return SimpleNamespace(reexec_pid=reexec_pid, master_pid=master_pid, systemd=systemd, cfg=cfg)


@pytest.mark.parametrize(
    ("server", "closes"),
    [
        (arbiter(), True),
        (arbiter(reexec_pid=42), False),  # USR2: the new master shares the listener
        (arbiter(master_pid=42), False),  # the new master of an upgrade
        (arbiter(systemd=True), False),  # socket activation: systemd keeps it
        (arbiter(reuse_port=True), False),
    ],
)
def test_gunicorn_filters_only_a_listener_that_ends_with_its_master(server, closes):
    assert listeners_close_with(server) is closes

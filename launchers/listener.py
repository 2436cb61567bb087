"""Closing a listening socket without resetting the connections waiting on it.

The kernel completes TCP handshakes on its own and queues the connections until
the server accepts them. Whatever is still queued when the last descriptor of a
listening socket closes is reset, and a proxy that has already sent a request
on it (nginx does, at once) cannot tell whether the app ran it: for a POST it
answers 502 rather than retry elsewhere. So a stop never just closes:

1. ``stop_queueing``: a socket filter (classic BPF, Linux) drops every new
   connection request (a SYN without ACK) from now on. Handshakes already under
   way still finish, and nothing else on the socket changes. A dropped SYN is
   not an error: the client sends it again after about a second, by when the
   socket is closed, so it gets a refusal (RST), which a proxy retries on
   another instance even for a POST (nothing was sent).
2. ``wait_until_drained``: the server goes on accepting until the queue is
   empty (``poll`` no longer reports the socket readable). With new requests
   dropped, it can only shrink.
3. The server closes the socket: nothing is waiting on it, so nothing is reset.
4. The server lets the requests on their way arrive. A proxy sends its request
   as soon as it has connected, and a connection accepted just before the stop may
   not have been read yet. hyper (granian's HTTP/1) closes such a connection when
   its graceful stop begins, as it does an idle keep-alive one: with the request
   in the kernel the client is reset, without it the request meets a closed
   connection. So the stop waits up to ``FIRST_REQUEST_LIMIT`` first:
   ``wait_until_read`` under granian, where only the kernel can tell; waitress's
   loop reads its channels' own state, and gives a head begun the same time.

Where there is no such filter (macOS, Windows) step 1 is skipped and the wait
only makes the window smaller. The cost to a stop is the wait: the handshake
allowance plus what the queue held, and up to ``FIRST_REQUEST_LIMIT`` for a client
that has connected and sent nothing (figures: docs/zero-downtime.md).
"""

from __future__ import annotations

import ctypes
import os
import select
import socket
import struct
import sys
import time
from collections.abc import Callable

SO_ATTACH_FILTER = 26  # <asm-generic/socket.h>; Python's socket module does not name it

# The filter sees the TCP header at offset 0. Flags are its 14th byte: drop a
# segment with SYN set and ACK clear (a new connection), pass all else.
#   ldb [13]; and #0x12; jeq #0x02, drop, pass; drop: ret #0; pass: ret #-1
_DROP_NEW_CONNECTIONS = (
    (0x30, 0, 0, 13),  # BPF_LD | BPF_B | BPF_ABS
    (0x54, 0, 0, 0x12),  # BPF_ALU | BPF_AND | BPF_K
    (0x15, 0, 1, 0x02),  # BPF_JMP | BPF_JEQ | BPF_K
    (0x06, 0, 0, 0),  # BPF_RET | BPF_K: drop
    (0x06, 0, 0, 0xFFFFFFFF),  # BPF_RET | BPF_K: keep the whole segment
)
_PROGRAM = ctypes.create_string_buffer(
    b"".join(struct.pack("HBBI", *insn) for insn in _DROP_NEW_CONNECTIONS)
)
# struct sock_fprog { unsigned short len; struct sock_filter *filter; }
_FPROG = struct.pack("HL", len(_DROP_NEW_CONNECTIONS), ctypes.addressof(_PROGRAM))

# Longer than a handshake takes on a LAN, so one already under way joins the queue
# before the wait ends.
HANDSHAKE_ALLOWANCE = 0.02
DRAIN_LIMIT = 1.0  # a server that accepts nothing for this long is not coming back to it
# A client that has connected and sent nothing this far into a stop is not a proxy
# with a request (it sends at once) but a speculative or idle connection: closed.
FIRST_REQUEST_LIMIT = 1.0

# struct tcp_info (<linux/tcp.h>): tcpi_state is its first byte, and the 64-bit
# tcpi_bytes_received (Linux 4.1+: what the peer has sent, read or not) is at byte 128.
_TCP_INFO_SIZE = 256
_BYTES_RECEIVED = struct.Struct("=Q")
_BYTES_RECEIVED_AT = 128
_TCP_ESTABLISHED = 1


def stop_queueing(sock: socket.socket) -> bool:
    """Drop new connection requests to ``sock`` from now on; False where that cannot be done."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, _FPROG)
    except OSError:
        return False
    return True


def is_queued(sock: socket.socket) -> bool:
    """Whether a connection is waiting to be accepted on the listening ``sock``."""
    if not hasattr(select, "poll"):  # Windows; select() there has no descriptor limit
        return bool(select.select([sock], [], [], 0)[0])
    poller = select.poll()  # poll(): select() cannot watch a descriptor above 1023
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))


def wait_until_drained(
    sock: socket.socket,
    *,
    limit: float = DRAIN_LIMIT,
    sleep: Callable[[float], object] = time.sleep,
) -> bool:
    """Let the server accept what ``sock`` still queues; True once nothing waits.

    ``sleep`` must let the accepting code run meanwhile: ``time.sleep`` where it
    runs in another thread or process, ``gevent.sleep`` in a gevent worker.
    """
    sleep(HANDSHAKE_ALLOWANCE)
    return _wait_until(lambda: not is_queued(sock), limit, sleep)


def listening_sockets(port: int) -> list[socket.socket]:
    """This process's listening sockets on ``port``, as new objects the caller closes.

    For a server whose listener is made outside Python (granian's, in Rust).
    """
    found = []
    for sock in _sockets_on(port):
        if _listening(sock):
            found.append(sock)
        else:
            sock.close()
    return found


def never_read(sock: socket.socket) -> bool:
    """Whether the server has read nothing yet from the connected TCP ``sock``: all its
    client has sent, if anything, still waits in the kernel. False off Linux."""
    if not sys.platform.startswith("linux"):
        return False
    import fcntl  # POSIX only
    import termios

    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_SIZE)
        unread = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0" * 4)
    except OSError:
        return False
    if len(info) < _BYTES_RECEIVED_AT + _BYTES_RECEIVED.size or info[0] != _TCP_ESTABLISHED:
        return False
    received = _BYTES_RECEIVED.unpack_from(info, _BYTES_RECEIVED_AT)[0]
    return received == int.from_bytes(unread, sys.byteorder, signed=True)


def unread_connections(port: int) -> int:
    """How many of this process's connections on ``port`` the server has read nothing from."""
    count = 0
    for sock in _sockets_on(port):
        with sock:
            count += not _listening(sock) and never_read(sock)
    return count


def wait_until_read(
    port: int,
    *,
    limit: float = FIRST_REQUEST_LIMIT,
    sleep: Callable[[float], object] = time.sleep,
) -> bool:
    """After the queue is drained: let the server read the first bytes of each connection
    it accepted on ``port``; True once it has, False after ``limit`` (Linux; True elsewhere).

    Each check opens and closes a duplicate of this process's sockets on ``port``.
    """
    return _wait_until(lambda: not unread_connections(port), limit, sleep)


def _wait_until(done: Callable[[], bool], limit: float, sleep: Callable[[float], object]) -> bool:
    """Whether ``done()`` came true within ``limit`` seconds, asked every 5 ms."""
    deadline = time.monotonic() + limit
    while not done():
        if time.monotonic() > deadline:
            return False
        sleep(0.005)
    return True


def _sockets_on(port: int) -> list[socket.socket]:
    """This process's sockets whose local port is ``port`` (listening or connected), each
    a duplicate the caller closes; read from ``/proc/self/fd`` (none off Linux)."""
    if not sys.platform.startswith("linux"):
        return []
    sockets = []
    for name in os.listdir("/proc/self/fd"):  # all read first: a duplicate made below
        try:  # may take a number listed here (listdir's own, closed since)
            if os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                sockets.append(int(name))
        except OSError:
            continue
    found = []
    for fd in sockets:
        try:
            duplicate = os.dup(fd)
        except OSError:
            continue
        try:
            sock = socket.socket(fileno=duplicate)
        except OSError:
            os.close(duplicate)
            continue
        try:
            if sock.getsockname()[1] == port:
                found.append(sock)
                continue
        except (OSError, IndexError, TypeError):
            pass
        sock.close()
    return found


def _listening(sock: socket.socket) -> bool:
    try:
        return bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
    except OSError:
        return False

"""Raw HTTP/1.1 exchanges with a server, and the run of the hostile-request corpus.

``talk`` sends bytes as a client would (several writes, a pause, a half close)
and reports every final response and whether the server closed the connection;
``run_corpus`` sends every vector of tests/malformed_corpus.py that way, and
``corpus_violations`` is what no server may ever do with one.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from tests.malformed_corpus import FOLLOW_UP, HALF_CLOSED, VECTORS

FINAL_STATUS = re.compile(rb"HTTP/1\.[01] ([2-5]\d{2}) [^\r\n]*\r\n(.*?)\r\n\r\n", re.S)


@dataclass
class Exchange:
    """What came back on one connection: every final response, and how the connection ended."""

    statuses: list[int]  # every final (non-1xx) response, in order
    body_sizes: list[int]  # the Content-Length each of those announced (0 when none)
    closed: bool  # the server closed or reset the connection (not left open and silent)


def _exchange(raw: bytes, closed: bool) -> Exchange:
    found = FINAL_STATUS.findall(raw)
    sizes = []
    for _, head in found:
        length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        chunked = re.search(rb"(?im)^transfer-encoding:\s*chunked", head)
        sizes.append(int(length.group(1)) if length else (1 if chunked else 0))
    return Exchange([int(code) for code, _ in found], sizes, closed)


def talk(
    port: int, *writes: bytes, pause: float = 0.0, half_close: bool = False, quiet: float = 1.0
) -> Exchange:
    """Send ``writes`` on one connection (``pause`` seconds apart); what came back, how it ended.

    ``half_close``: then end our side, as a client that gave up on its body would.
    The server is given ``quiet`` seconds of silence (at most 5 times that in all)
    before the connection counts as left open.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        try:
            for i, data in enumerate(writes):
                if i and pause:
                    time.sleep(pause)
                s.sendall(data)
            if half_close:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before it was all sent: the answer may still be there
        s.settimeout(quiet)
        chunks, closed = [], False
        deadline = time.monotonic() + quiet * 5
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                break
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            chunks.append(chunk)
        return _exchange(b"".join(chunks), closed)


def send_vector(port: int, data: bytes, *, half_close: bool = False) -> Exchange:
    """A vector and the pipelined follow-up, on one connection."""
    return talk(port, data + FOLLOW_UP, half_close=half_close)


@dataclass
class Outcome:
    exchange: Exchange
    app_saw: list[str]  # "METHOD /path" the app was given, the follow-up left out

    @property
    def statuses(self) -> list[int]:
        return self.exchange.statuses

    @property
    def answer(self) -> str:
        """'refused' (a 4xx first), 'served' (a 2xx or 3xx first) or 'closed' (no answer)."""
        if not self.statuses:
            return "closed"
        return "refused" if 400 <= self.statuses[0] < 500 else "served"


def run_corpus(port: int, requests_seen: Callable[[], list[str]]) -> dict[str, Outcome]:
    """Each vector in turn, so that what the app saw meanwhile belongs to it.

    ``requests_seen()``: every "METHOD /path" the app has been given so far, in order.
    """
    outcomes = {}
    for name, data in VECTORS.items():
        before = len(requests_seen())
        got = send_vector(port, data, half_close=name in HALF_CLOSED)
        seen = requests_seen()[before:]
        outcomes[name] = Outcome(got, [line for line in seen if line != "GET /healthz"])
    return outcomes


def corpus_violations(outcomes: dict[str, Outcome], *, bodiless_refusals_allowed: bool = False):
    """What no server may do with any vector, by kind: {kind: {vector: detail}}.

    A 5xx; a smuggled request (the app saw /smuggled); a swallowed one (the
    connection left open with the pipelined request unanswered: the follow-up asks
    the server to close, so an open connection means it was never answered); a 4xx
    with an empty body, unless ``bodiless_refusals_allowed`` (granian's own).
    """
    found: dict[str, dict[str, object]] = {
        "5xx": {},
        "smuggled": {},
        "swallowed or left open": {},
        "4xx without a body": {},
    }
    for name, o in outcomes.items():
        if any(s >= 500 for s in o.statuses):
            found["5xx"][name] = o.statuses
        if any("/smuggled" in seen for seen in o.app_saw):
            found["smuggled"][name] = o.app_saw
        if not o.exchange.closed:
            found["swallowed or left open"][name] = o.statuses
        empty = [
            s
            for s, size in zip(o.statuses, o.exchange.body_sizes, strict=True)
            if s >= 400 and not size
        ]
        if empty and not bodiless_refusals_allowed:
            found["4xx without a body"][name] = o.statuses
    return {kind: vectors for kind, vectors in found.items() if vectors}


def error_lines(log: str) -> list[str]:
    """Lines of a server's output logged at ERROR or CRITICAL (text or LOG_FORMAT=json)."""
    marks = ("[ERROR]", "[CRITICAL]", '"level": "error"', '"level": "critical"')
    return [line for line in log.splitlines() if any(mark in line for mark in marks)]

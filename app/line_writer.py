"""The access log's handler: its lines written by one thread of their own, in batches.

A request thread that writes its own line makes a system call, and CPython lets go
of the GIL around every write: under a threaded server (waitress, granian) the
thread then waits for the GIL to come back, up to the 5 ms switch interval, with
every request. Measured here (docs/performance.md): waitress served a few hundred
requests a second with the line written by each request and about 1,700 without.
So a request only appends its line to a queue; a writer thread (a greenlet under
gevent), woken by the first line, lets others gather for BATCH_SECONDS, writes them
all with one call and flushes, then waits for the next. The lines keep their order,
and a line waits about 10 ms, and for as long as the writer waits for the GIL.

``flush()`` writes what is queued from the calling thread. logging calls it at
interpreter exit (``logging.shutdown``); processes that end without it (granian's
workers are multiprocessing processes, which skip ``atexit``) flush through
multiprocessing's own exit hook. A process killed with SIGKILL loses the lines
not yet written, as it loses what it had not yet answered.
"""

from __future__ import annotations

import collections
import logging
import os
import sys
import threading
import time
from collections.abc import Callable

MakeRecord = Callable[[], logging.LogRecord]
# How long the writer lets lines gather once one is queued. Woken for each line, it
# took the GIL from the request threads for every write: twice the line's cost.
BATCH_SECONDS = 0.01


class LineHandler(logging.StreamHandler):
    """A StreamHandler whose lines are written by a writer thread of each process."""

    def __init__(self, stream: object = None) -> None:
        super().__init__(stream)
        self._queued: collections.deque[tuple[str, MakeRecord]] = collections.deque()
        self._wake: threading.Event | None = None  # None: no writer in this process yet
        self._closed = False
        self.writer: threading.Thread | None = None  # this process's writer thread
        if hasattr(os, "register_at_fork"):  # not on Windows, which does not fork
            os.register_at_fork(after_in_child=self._forked)

    def _forked(self) -> None:
        self._queued.clear()  # the parent writes its own lines
        self._wake = None  # threads do not survive a fork: the child starts its own writer

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001 - as logging.StreamHandler: report it, carry on
            self.handleError(record)
            return
        self.write_line(line, lambda: record)

    def write_line(self, line: str, record: MakeRecord) -> None:
        """Queue a formatted line; ``record`` makes its record if its write fails."""
        self._queued.append((line, record))
        if self._closed:  # no writer any more: written at once, as by a StreamHandler
            self.flush()
            return
        if self._wake is None:
            self._start_writer()
        wake = self._wake
        if not wake.is_set():  # type: ignore[union-attr]
            wake.set()  # type: ignore[union-attr]

    def flush(self) -> None:
        """Write every queued line now, from this thread."""
        with self.lock:  # type: ignore[union-attr]
            self._write_queued()

    def close(self) -> None:
        """Write what is queued and end the writer thread (configure_logging closes the
        handler it replaces; logging.shutdown closes every handler at exit)."""
        self._closed = True
        if self._wake is not None:
            self._wake.set()
        self.flush()
        super().close()

    def _start_writer(self) -> None:
        with self.lock:  # type: ignore[union-attr]  # one writer, if two threads come first
            if self._wake is not None:
                return
            self._wake = threading.Event()
            self.writer = threading.Thread(
                target=self._write_forever, name="access-log", daemon=True
            )
            self.writer.start()
            if "multiprocessing" in sys.modules:  # a worker process may end without atexit
                from multiprocessing import util

                util.Finalize(self, self.flush, exitpriority=10)

    def _write_forever(self) -> None:
        wake = self._wake
        while not self._closed:
            wake.wait()  # type: ignore[union-attr]
            time.sleep(BATCH_SECONDS)
            wake.clear()  # type: ignore[union-attr]  # before taking the lines: none is left behind
            self.flush()

    def _write_queued(self) -> None:
        queued = self._queued
        lines = [queued.popleft() for _ in range(len(queued))]
        if not lines:
            return
        try:
            self.stream.write("".join(line + self.terminator for line, _ in lines))
            self.stream.flush()
        except Exception:  # noqa: BLE001 - as logging.StreamHandler, once for the batch
            self.handleError(lines[0][1]())

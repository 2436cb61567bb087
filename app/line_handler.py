"""The access log's handler: a line is one write to stdout's descriptor, with no lock.

A lock held across a write, which lets go of the GIL, makes threads queue for the
lock and for the GIL in turn (under waitress's threads: docs/performance.md). pipe(7)
promises that a write of up to PIPE_BUF bytes to a pipe arrives whole, whatever
other threads and processes write to it. A longer line is written through the
stream under the lock, as is every line where bytes cannot go straight to the
descriptor (``_file_descriptor`` says where).
"""

from __future__ import annotations

import io
import logging
import os
import select
from collections.abc import Callable
from typing import Any

# 4096 on Linux. Windows has none, and its lines never take the descriptor path.
WHOLE = getattr(select, "PIPE_BUF", 512)


class LineHandler(logging.StreamHandler):
    """The StreamHandler that ``configure_logging`` gives the access log."""

    _fd_of: tuple[Any, int | None] = (None, None)  # (stream, its file descriptor or None)

    def emit(self, record: logging.LogRecord) -> None:
        # handle() holds the handler's lock already: no flush() that takes it again.
        try:
            self.stream.write(self.format(record) + self.terminator)
            self.stream.flush()
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001 - as logging.StreamHandler: report it, carry on
            self.handleError(record)

    def write_line(self, line: str, record: Callable[[], logging.LogRecord]) -> None:
        """Write a line formatted already, as ``handle`` writes a record's (``record``
        makes the record only if the write fails and ``handleError`` reports it)."""
        stream, fd = self._fd_of
        if stream is not self.stream:
            with self.lock:  # type: ignore[union-attr]
                stream, fd = self._fd_of = (self.stream, _file_descriptor(self.stream))
        try:
            if fd is not None and not stream.closed:  # closed: its number may be reused
                data = (line + self.terminator).encode(stream.encoding, stream.errors)
                if len(data) <= WHOLE:
                    while data:  # a file or a socket may take only part of it
                        data = data[os.write(fd, data) :]
                    return
            with self.lock:  # type: ignore[union-attr]
                stream.write(line + self.terminator)
                stream.flush()
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001 - as emit
            self.handleError(record())


def _file_descriptor(stream: Any) -> int | None:
    """The descriptor under a text stream of a file or pipe (stdout), after what the
    stream held is written out; None where writing bytes to it would change the line:
    not POSIX (Windows' stdout writes each newline as CRLF), a terminal, an encoding
    that adds to each piece it encodes (a byte-order mark), or any other stream (a
    test's StringIO)."""
    if os.name != "posix" or not isinstance(stream, io.TextIOWrapper):
        return None
    try:
        if stream.isatty() or "\n".encode(stream.encoding) != b"\n":
            return None
        stream.flush()  # what was written through the stream comes first
        return stream.fileno()
    except (OSError, ValueError, LookupError):
        return None

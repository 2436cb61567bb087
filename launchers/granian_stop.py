"""How a granian stop loses no request: its workers' signals, from fork to exit.

- A worker gets the stop signals only once it can act on them. Between fork and
  granian installing the worker's handlers (after the app is loaded) the worker
  still ran its main process's handler, which only sets an event of the main
  process's: a SIGTERM then was lost, the worker went on serving, and granian
  killed it after GRACEFUL_TIMEOUT with whatever it was serving (8.3 s, every time
  SIGTERM came right after the workers were spawned; in a rolling restart, one
  stop in a few hundred). The main process now forks each worker with SIGTERM and
  SIGINT blocked (``boots_with_stop_signals_blocked``), and the worker unblocks
  them once its handlers are in place, so a signal sent meanwhile waits for them.
- SIGTERM empties the worker's listen queue before granian's own stop begins
  (``drain_on_sigterm``).
- SIGINT (Ctrl-C) stops at once (``stop_at_once_on_sigint``).
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from app import lifecycle
from launchers import listener

STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})
# Where a worker is told to stop before it listens: how long the stop waits for its
# listener (a worker listens within milliseconds of installing its handlers).
LISTENER_LIMIT = 5.0
_CAN_BLOCK = hasattr(signal, "pthread_sigmask")  # POSIX; Windows spawns its workers


def boots_with_stop_signals_blocked(server_class: type) -> type:
    """granian's Server, whose workers are forked with the stop signals blocked."""
    if not _CAN_BLOCK:
        return server_class

    class BlockingStopSignalsAtFork(server_class):  # type: ignore[misc, valid-type]
        def _spawn_worker(self, *args: Any, **kwargs: Any) -> Any:
            worker = super()._spawn_worker(*args, **kwargs)
            start = worker.start

            def start_with_stop_signals_blocked() -> None:
                # The mask is this thread's and a forked child's; what arrives meanwhile
                # is delivered here once it is restored.
                before = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
                try:
                    start()
                finally:
                    signal.pthread_sigmask(signal.SIG_SETMASK, before)

            worker.start = start_with_stop_signals_blocked
            return worker

    return BlockingStopSignalsAtFork


def handle_stop_signals(port: int) -> None:
    """In a granian worker, before granian installs its handlers (``granian._signals``):
    on Linux, ours goes in front of its SIGTERM handler; then the stop signals blocked
    at fork are let through, and one that came meanwhile is handled now."""
    from granian import _signals

    install = _signals.set_sync_signals

    def set_sync_signals() -> Any:
        event = install()
        if sys.platform.startswith("linux"):
            signal.signal(signal.SIGTERM, drain_on_sigterm(port, signal.getsignal(signal.SIGTERM)))
        if _CAN_BLOCK:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        return event

    _signals.set_sync_signals = set_sync_signals


def drain_on_sigterm(port: int, stop: Any) -> Callable[[int, Any], None]:
    """A SIGTERM handler that empties the worker's listen queue, then calls ``stop``.

    On Linux each granian worker listens on a socket of its own (SO_REUSEPORT)
    and closes it when told to stop; the connections its queue still held were
    reset (a POST behind nginx then failed). The handler turns new connections
    away, lets the worker accept what is queued and read the first request of
    each connection it accepted (launchers/listener.py), then hands over to
    granian's own. That holds for a stop, a reload (HUP) and a respawn alike:
    each closes one worker's socket. The work is done on a thread: a SIGTERM that
    waited for the handlers comes before the worker listens, and is acted on once
    it does.
    """

    def stop_when_drained(signum: int, frame: Any) -> None:
        deadline = time.monotonic() + LISTENER_LIMIT
        while not (socks := listener.listening_sockets(port)) and time.monotonic() < deadline:
            time.sleep(0.005)
        try:
            for sock in socks:
                listener.stop_queueing(sock)
            for sock in socks:
                listener.wait_until_drained(sock)
        finally:
            for sock in socks:
                sock.close()  # our duplicate; granian closes its own
        # hyper's graceful stop closes a connection it has read nothing from, even
        # with the request already in the kernel (the client is reset): wait for it.
        listener.wait_until_read(port)
        if callable(stop):
            stop(signum, frame)

    def on_sigterm(signum: int, frame: Any) -> None:
        if lifecycle.shutting_down():
            return  # sent twice (to the process group, and by granian's main process)
        lifecycle.begin_shutdown()
        threading.Thread(
            target=stop_when_drained, args=(signum, None), name="drain-on-sigterm", daemon=True
        ).start()

    return on_sigterm


def stop_at_once_on_sigint(server: Any) -> Callable[[], None]:
    """granian drains on SIGINT as on SIGTERM; Ctrl-C should stop at once, as elsewhere."""

    def install() -> None:  # an on_startup hook: runs after granian sets its signal handlers
        def on_sigint(signum: int, frame: Any) -> None:
            server.workers_kill_timeout = 0.01  # kill the workers instead of waiting for them
            server.signal_handler_interrupt()

        signal.signal(signal.SIGINT, on_sigint)

    return install

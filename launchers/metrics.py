"""METRICS under the launchers: the multiprocess folder made and wiped at start, and each
dead worker's counts kept.

prometheus_client chooses how it stores values when it is first imported, from
PROMETHEUS_MULTIPROC_DIR: ``prepare`` sets it in this process's environment before
any worker starts (and so before any worker imports it), for every launcher
(``launchers.run``) and for ``gunicorn -c gunicorn_config.py`` (its ``on_starting``,
once per master start, not on a reload). Every worker inherits it.

A worker that exits (recycled by MAX_REQUESTS, killed, replaced on a reload) leaves
its files behind: ``worker_exited`` folds them into the archive
(app/metrics_files.py), from gunicorn's ``child_exit`` hook and from granian's main
process when it replaces a worker (``launchers.granian``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from app import metrics_files
from settings import Settings
from settings.errors import ConfigError

log = logging.getLogger("launchers.metrics")


def prepare(settings: Settings) -> None:
    """METRICS on: make and wipe the folder, and name it to prometheus_client."""
    if not settings.metrics:
        return
    try:
        folder = metrics_files.folder_for(settings.port)  # no usable temporary folder: OSError
        metrics_files.prepare_folder(folder)
    except (OSError, metrics_files.FolderError) as exc:
        raise ConfigError(
            f"METRICS is on, but the metrics folder cannot be used: {exc}. "
            f"Set {metrics_files.VARIABLE} to a folder of this user's (on a read-only root, "
            "one on a tmpfs), or unset METRICS."
        ) from None
    os.environ[metrics_files.VARIABLE] = str(folder)


def worker_exited(pid: int) -> None:
    """Keep an exited worker's counts (in the archive) and drop its live gauges."""
    folder = os.environ.get(metrics_files.VARIABLE)
    if not folder:
        return
    try:
        metrics_files.archive_dead_worker(Path(folder), pid)
    except Exception as exc:  # noqa: BLE001 - a torn file must never stop gunicorn's master
        log.warning("metrics: the files of worker %s could not be archived: %s", pid, exc)


def child_exit(server: object, worker: object) -> None:
    """gunicorn's hook, in the master, after it has reaped a worker."""
    worker_exited(worker.pid)  # type: ignore[attr-defined]


def granian_server(server_class: type, settings: Settings) -> type:
    """granian's Server, keeping a replaced worker's counts when METRICS is on.

    granian has no child_exit hook. Its main process replaces a worker (one that
    died, one past its lifetime or memory limit, each one on a reload) in
    ``_respawn_workers``, one call at a time from its main loop: the worker's pid is
    read before it is replaced and its files are archived once it has been stopped.
    (A private method of granian's: tests/test_metrics_live.py kills a worker under
    granian and checks its counts are kept, so an upgrade that changes it fails there.)
    """
    if not settings.metrics:
        return server_class

    class KeepingCounts(server_class):  # type: ignore[misc, valid-type]
        def _respawn_workers(self, workers: list[int], *args: object, **kwargs: object) -> None:
            # Worker processes have a pid; granian's free-threaded build runs threads.
            pids = [getattr(self.wrks[idx].inner, "pid", None) for idx in workers]
            try:
                super()._respawn_workers(workers, *args, **kwargs)
            finally:
                for pid in pids:
                    if pid:
                        worker_exited(pid)

    return KeepingCounts

"""A gevent worker's start, without reading every package's metadata 25 times, nor
walking every object the master made.

``gevent.monkey.patch_all()`` announces each module it patches to gevent's plugins,
and looks the plugins up each time with ``importlib.metadata.entry_points(group=...)``,
which opens every installed package's ``entry_points.txt`` again: 25 lookups, about
200 ms of a worker's start here (docs/performance.md). While the worker patches, the
lookups are answered from one reading of the metadata instead: the same plugins are
found and called, since nothing is installed in the meantime.

It then walks ``gc.get_objects()`` for locks held at that moment (an import under
way, a pure-Python RLock), to make the patching greenlet their owner. A worker
gunicorn has just forked holds none: the master forks it from its main loop, outside
any import or logging call. The walk sees only the objects made while the worker
patches.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from importlib import metadata
from typing import Any


@contextlib.contextmanager
def entry_points_read_once() -> Iterator[None]:
    """Within: ``importlib.metadata.entry_points(...)`` selects from one reading of them."""
    read = metadata.entry_points
    every = read()

    def entry_points(**params: Any) -> metadata.EntryPoints:
        return every.select(**params) if params else every

    metadata.entry_points = entry_points  # type: ignore[assignment]
    try:
        yield
    finally:
        metadata.entry_points = read


@contextlib.contextmanager
def objects_made_before_hidden() -> Iterator[None]:
    """Within: ``gc.get_objects()`` lists only the objects made since (the others are
    in gc's permanent generation until the end). Where something froze objects already
    (``gc.freeze()`` for copy-on-write), it is left as it is: theirs stay frozen."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def patch_with_entry_points_read_once(worker: Any) -> None:
    """Make a gevent worker's ``patch()`` (called first thing in the worker) run within
    ``entry_points_read_once`` and ``objects_made_before_hidden``. Other workers have
    no ``patch`` and are left as they are."""
    patch = getattr(worker, "patch", None)
    if patch is None:
        return

    def patched() -> None:
        with entry_points_read_once(), objects_made_before_hidden():
            patch()

    worker.patch = patched

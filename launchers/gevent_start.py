"""A gevent worker's start, without reading every package's metadata 25 times.

``gevent.monkey.patch_all()`` announces each module it patches to gevent's plugins,
and looks the plugins up each time with ``importlib.metadata.entry_points(group=...)``,
which opens every installed package's ``entry_points.txt`` again: 25 lookups, about
200 ms of a worker's start here (docs/performance.md). While the worker patches, the
lookups are answered from one reading of the metadata instead: the same plugins are
found and called, since nothing is installed in the meantime.
"""

from __future__ import annotations

import contextlib
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


def patch_with_entry_points_read_once(worker: Any) -> None:
    """Make a gevent worker's ``patch()`` (called first thing in the worker) run within
    ``entry_points_read_once``. Other workers have no ``patch`` and are left as they are."""
    patch = getattr(worker, "patch", None)
    if patch is None:
        return

    def patched() -> None:
        with entry_points_read_once():
            patch()

    worker.patch = patched

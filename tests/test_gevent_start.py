"""A gevent worker's patching reads the packages' entry points once (launchers/gevent_start.py).

The live proof that gevent workers still start and serve is every gunicorn test;
here: the lookups give what they would without the cache, and the cache is gone after.
"""

from __future__ import annotations

from importlib import metadata
from types import SimpleNamespace

from launchers.gevent_start import entry_points_read_once, patch_with_entry_points_read_once

# What gevent looks up while it patches, and groups every environment has.
GROUPS = ("gevent.plugins.monkey.will_patch_all", "console_scripts", "pytest11", "no.such.group")


def names(entry_points: metadata.EntryPoints) -> list[tuple[str, str, str]]:
    return sorted((ep.group, ep.name, ep.value) for ep in entry_points)


def test_lookups_within_give_what_they_give_without():
    read = metadata.entry_points
    without = {group: names(metadata.entry_points(group=group)) for group in GROUPS}
    assert without["console_scripts"], "a venv with pytest has console scripts"
    with entry_points_read_once():
        assert metadata.entry_points is not read
        assert {group: names(metadata.entry_points(group=group)) for group in GROUPS} == without
    assert metadata.entry_points is read


def test_the_original_is_back_when_patching_fails():
    read = metadata.entry_points
    try:
        with entry_points_read_once():
            raise RuntimeError("patching failed")
    except RuntimeError:
        pass
    assert metadata.entry_points is read


def test_a_gevent_workers_patch_runs_within_and_other_workers_are_left_alone():
    read = metadata.entry_points
    seen = []
    worker = SimpleNamespace(patch=lambda: seen.append(metadata.entry_points is not read))
    patch_with_entry_points_read_once(worker)
    worker.patch()
    assert seen == [True]
    assert metadata.entry_points is read

    sync = SimpleNamespace()  # gunicorn's sync and gthread workers have no patch()
    patch_with_entry_points_read_once(sync)
    assert vars(sync) == {}


def test_post_fork_makes_the_patch_read_them_once():
    import queue
    import signal

    from launchers.gunicorn import post_fork

    read = metadata.entry_points
    seen = []
    worker = SimpleNamespace(alive=True, patch=lambda: seen.append(metadata.entry_points is read))
    before = signal.pthread_sigmask(signal.SIG_BLOCK, set())
    try:
        post_fork(SimpleNamespace(SIG_QUEUE=queue.SimpleQueue()), worker)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)
    worker.patch()
    assert seen == [False]

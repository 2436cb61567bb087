"""A gevent worker's patching reads the packages' entry points once, and walks only the
objects made while it patches (launchers/gevent_start.py).

The live proof that gevent workers still start and serve is every gunicorn test;
here: the lookups give what they would without the cache, the cache is gone after,
and so is the freeze that hides the objects made before.
"""

from __future__ import annotations

import gc
from importlib import metadata
from types import SimpleNamespace

from launchers.gevent_start import (
    entry_points_read_once,
    objects_made_before_hidden,
    patch_with_entry_points_read_once,
)

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
    worker = SimpleNamespace(
        patch=lambda: seen.append((metadata.entry_points is not read, gc.get_freeze_count() > 0))
    )
    patch_with_entry_points_read_once(worker)
    worker.patch()
    assert seen == [(True, True)]
    assert metadata.entry_points is read and gc.get_freeze_count() == 0

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


def listed(thing: object, objects: list) -> bool:
    return any(o is thing for o in objects)


def test_within_only_the_objects_made_since_are_listed_and_after_all_are():
    made_before = ["before"]  # a list: tracked by gc
    with objects_made_before_hidden():
        made_within = ["within"]
        objects = gc.get_objects()
        assert listed(made_within, objects) and not listed(made_before, objects)
        del objects
    assert gc.get_freeze_count() == 0
    objects = gc.get_objects()
    assert listed(made_before, objects) and listed(made_within, objects)


def test_the_objects_are_listed_again_when_patching_fails():
    made_before = ["before"]
    try:
        with objects_made_before_hidden():
            raise RuntimeError("patching failed")
    except RuntimeError:
        pass
    assert gc.get_freeze_count() == 0 and listed(made_before, gc.get_objects())


def test_objects_someone_else_froze_stay_frozen():
    gc.freeze()  # as a forker's gunicorn config may, for copy-on-write
    try:
        frozen = gc.get_freeze_count()
        with objects_made_before_hidden():
            assert gc.get_freeze_count() == frozen
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()

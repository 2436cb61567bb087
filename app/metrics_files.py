"""The multiprocess folder prometheus_client's workers write to: where it is, and its upkeep.

prometheus_client's multiprocess mode keeps each process's values in files
named ``TYPE[_MODE]_PID.db`` in ``PROMETHEUS_MULTIPROC_DIR``, and a scrape sums
them all. The launchers (launchers/metrics.py) choose and wipe the folder at
start, before any worker imports prometheus_client, and fold each dead worker's
files into one archive file per type, so that recycled and killed workers lose
no count and leave no pile of files. A scrape reads the folder under a shared
lock, the fold takes it exclusively: no scrape ever sees a count twice or not at all.

This module imports prometheus_client only inside ``archive_dead_worker``: the
gunicorn master imports it before it has set the folder's variable.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

VARIABLE = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's own: a person's value wins
LOCK_FILE = "scrape.lock"  # no .db suffix: prometheus_client reads every *.db file
ARCHIVE_PID = "archive"  # counter_archive.db: the sums of every worker that has exited
# The types whose values add up across processes; a dead worker's are kept in the archive.
# Gauges are not: ours are live* modes, which mark_process_dead removes with their process.
SUMMED_TYPES = ("counter", "histogram", "summary")
_PID_FILE = re.compile(r"^(?P<type>[a-z]+)(?:_(?P<mode>[a-z]+))?_(?P<pid>\d+)\.db$")

try:
    import fcntl
except ImportError:  # Windows: one waitress process, no worker ever exits apart
    fcntl = None  # type: ignore[assignment]


class FolderError(Exception):
    """The folder cannot be used; the message says which and why."""


def folder_for(port: int, environ: Mapping[str, str] = os.environ) -> Path:
    """The folder for a server on ``port``: PROMETHEUS_MULTIPROC_DIR when set, else one of
    this user's under the temporary directory ($TMPDIR, /tmp), keyed by port, so two
    instances on one machine never share one."""
    if environ.get(VARIABLE):
        return Path(environ[VARIABLE])
    owner = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    return Path(tempfile.gettempdir()) / f"flask-app-metrics-{owner}-{port}"


def prepare_folder(folder: Path) -> None:
    """Make the folder (0700) if missing and remove every .db file in it: a fresh start.

    Only .db files are removed, so a person's own folder keeps anything else. A folder
    that is a symbolic link, another user's or writable by others is refused: under a
    shared /tmp it may have been put there for us to write into.
    """
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700, parents=True)
    info = folder.lstat()
    if not stat.S_ISDIR(info.st_mode):
        raise FolderError(f"{folder} is not a directory (a symbolic link or a file is refused)")
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise FolderError(f"{folder} belongs to another user (uid {info.st_uid})")
    if hasattr(os, "getuid") and info.st_mode & 0o022:
        # Others could put files (or links to files) there for the workers to write into.
        raise FolderError(f"{folder} is writable by others (mode {stat.S_IMODE(info.st_mode):o})")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise FolderError(f"{folder} is not writable by this user")
    for old in folder.glob("*.db"):
        old.unlink()


@contextlib.contextmanager
def locked(folder: str | os.PathLike, *, shared: bool) -> Iterator[None]:
    """Hold the folder's lock: shared while a scrape reads, exclusive while files change."""
    if fcntl is None:
        yield
        return
    fd = os.open(os.path.join(folder, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def files_of(folder: Path, pid: int) -> list[Path]:
    """A process's files whose values are summed (counter, histogram, summary)."""
    found = []
    for path in folder.glob(f"*_{pid}.db"):
        match = _PID_FILE.match(path.name)
        if match and match["type"] in SUMMED_TYPES and int(match["pid"]) == pid:
            found.append(path)
    return found


def live_pids(folder: Path) -> list[int]:
    """The worker processes that have files of a live* gauge (removed when they exit)."""
    pids = set()
    for path in folder.glob("gauge_live*_*.db"):
        match = _PID_FILE.match(path.name)
        if match:
            pids.add(int(match["pid"]))
    return sorted(pids)


def archive_dead_worker(folder: Path, pid: int) -> int:
    """Fold an exited worker's files into the archive and delete them; remove its live gauges.

    Call it once per exited process, from one process at a time (gunicorn's master in
    ``child_exit``, granian's main process when it replaces a worker). Returns how many
    files were folded.
    """
    from prometheus_client import multiprocess
    from prometheus_client.mmap_dict import MmapedDict

    with locked(folder, shared=False):
        dead = files_of(folder, pid)
        for path in dead:
            kind = path.name.split("_", 1)[0]
            archive = MmapedDict(str(folder / f"{kind}_{ARCHIVE_PID}.db"))
            try:
                for key, value, timestamp, _ in _values(path):
                    kept, _ = archive.read_value(key)
                    archive.write_value(key, kept + value, timestamp)
            finally:
                archive.close()
            path.unlink()
        multiprocess.mark_process_dead(pid, str(folder))
    return len(dead)


def _values(path: Path):
    from prometheus_client.mmap_dict import MmapedDict

    return MmapedDict.read_all_values_from_file(str(path))

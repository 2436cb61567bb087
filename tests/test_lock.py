"""The lock: every requirements*.txt is made from pyproject.toml by scripts/lock.sh.

Each package pinned and hashed (pip then checks every download by itself), one file
for every platform, nothing of the machine that made it, and current with its inputs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import IN_CI, ROOT

LOCKS = (
    "requirements.txt",
    "requirements-granian.txt",
    "bench/requirements.txt",
    "requirements-dev.txt",
)
PIN = re.compile(r"^([A-Za-z0-9._-]+(?:\[[^\]]*\])?)==(\S+)(?:\s*;\s*([^\\]+?))?\s*\\?$")


def entries(path: Path) -> dict[str, tuple[str, str, int]]:
    """name -> (version, marker, number of hashes) for each requirement of a lock."""
    found: dict[str, tuple[str, str, int]] = {}
    name = ""
    for line in path.read_text().splitlines():
        if line.startswith(("#", "    #")) or not line.strip():
            continue
        if line.startswith("    --hash=sha256:"):
            version, marker, hashes = found[name]
            found[name] = (version, marker, hashes + 1)
            continue
        match = PIN.match(line)
        assert match, f"{path.name}: not a pinned requirement: {line!r}"
        name = match[1].lower()
        found[name] = (match[2], (match[3] or "").strip(), 0)
    return found


@pytest.mark.parametrize("lock", LOCKS)
def test_every_package_is_pinned_and_hashed(lock):
    found = entries(ROOT / lock)
    assert found and all(hashes for _, _, hashes in found.values()), found


@pytest.mark.parametrize("lock", LOCKS)
def test_a_lock_names_no_path_or_index_of_the_machine_that_made_it(lock):
    text = (ROOT / lock).read_text()
    for word in (
        "file:",
        "/opt/",
        "/tmp/",
        "/root",
        "/home/",
        "--index-url",
        "--extra-index-url",
        "--find-links",
    ):
        assert word not in text, word


def test_one_lock_serves_every_platform():
    runtime = entries(ROOT / "requirements.txt")
    assert runtime["waitress"][1] == ""  # everywhere, Windows included
    for name in ("gunicorn", "gevent"):
        assert "sys_platform != 'win32'" in runtime[name][1], runtime[name]


def test_the_other_locks_pin_what_requirements_txt_pins_alike():
    runtime = entries(ROOT / "requirements.txt")
    for lock in LOCKS[1:]:
        for name, (version, _, _) in entries(ROOT / lock).items():
            assert name not in runtime or runtime[name][0] == version, (lock, name)


def compile_lock(project: Path, inputs: str | None = None) -> list[str]:
    """scripts/lock.sh in a copy of the inputs (or these ones) and the committed lock;
    the lock files that come out different from the committed ones."""
    (project / "bench").mkdir(parents=True)
    (project / "scripts").mkdir()
    for name in ("pyproject.toml", "scripts/lock.sh", *LOCKS):
        shutil.copy(ROOT / name, project / name)
    if inputs is not None:
        (project / "pyproject.toml").write_text(inputs)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    result = subprocess.run(
        ["bash", "scripts/lock.sh"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    if result.returncode != 0:
        message = f"the lock could not be compiled (is the package index reachable?): {result.stderr[-800:]}"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    return [lock for lock in LOCKS if (project / lock).read_text() != (ROOT / lock).read_text()]


@pytest.mark.slow
def test_the_lock_is_current(tmp_path):
    assert compile_lock(tmp_path) == [], (
        "the lock is out of date with pyproject.toml: run scripts/lock.sh"
    )


@pytest.mark.slow
def test_an_input_changed_without_a_new_lock_is_caught(tmp_path):
    inputs = (ROOT / "pyproject.toml").read_text()
    added = inputs.replace('"waitress>=3.0.1",', '"waitress>=3.0.1",\n    "six>=1.16",')
    assert added != inputs
    assert "requirements.txt" in compile_lock(tmp_path, added)
    assert "six" in entries(tmp_path / "requirements.txt")

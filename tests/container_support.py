"""Helpers for the tests that build the image and run it with a real Docker engine.

The image is built once per test run and tagged with a hash of everything it is made
from (the Dockerfile, .dockerignore, the files the build context lets in, the base
image), so a later run with the same files reuses it. Every container runs with
``--network host`` on a free loopback port, carries a label naming the test process
that started it, and is removed when its test ends; containers left behind by a test
process that no longer exists are removed at the next run.

Without an image registry (as on the CI machine) the base image is made from Debian's
packages with mmdebstrap: a stand-in for ``python:3.11-slim-bookworm`` under the same
tag, carrying this machine's way to the package index (pip's CA bundle and index URLs),
so that the shipped Dockerfile builds unchanged.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest

from tests.support import IN_CI, ROOT, SECRET, free_port, get, need_tool, process_tree

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
TEST_REPOSITORY = "flask-starter-test"
OWNER_LABEL = "flask-starter-test.owner-pid"
STAND_IN_LABEL = "flask-starter-test.stand-in"
UNUSED_IMAGE_KEPT = 24 * 3600  # seconds
STAND_IN_PACKAGES = "python3,python3-pip,python3-venv,python-is-python3,ca-certificates"


def missing(message: str) -> None:
    """Skip, except in CI, where what the tests need must be there."""
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def docker(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["docker", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"docker {' '.join(args)} exited {result.returncode}\n{result.stdout}{result.stderr}"
        )
    return result


def need_docker() -> None:
    """A Docker client and an engine that answers; skip (fail in CI) without them."""
    need_tool("docker", "the image tests build and run the Dockerfile")
    try:
        answer = docker("info", "--format", "{{.ServerVersion}}", timeout=20, check=False)
    except subprocess.TimeoutExpired:
        missing("the Docker engine did not answer `docker info` in 20 s (.ci/run starts one)")
    if answer.returncode != 0 or not answer.stdout.strip():
        missing(f"no Docker engine answers (.ci/run starts dockerd): {answer.stderr.strip()}")


def image_exists(tag: str) -> bool:
    return docker("image", "inspect", tag, check=False).returncode == 0


def image_inspect(tag: str) -> dict:
    return json.loads(docker("image", "inspect", tag).stdout)[0]


# --- the base image -------------------------------------------------------------------------


def base_image_name() -> str:
    """The image the Dockerfile's (only) FROM names."""
    froms = [
        line.split()[1]
        for line in DOCKERFILE.read_text().splitlines()
        if line.strip().upper().startswith("FROM ")
    ]
    assert len(froms) == 1, f"expected one FROM in the Dockerfile, found {froms}"
    return froms[0]


def ensure_base_image() -> str:
    """The base image, present locally: pulled when a registry answers, else a stand-in."""
    name = base_image_name()
    if image_exists(name):
        return name
    if docker("pull", name, timeout=300, check=False).returncode == 0:
        return name
    if not shutil.which("mmdebstrap"):
        missing(
            f"{name} is not on this engine, no registry answers `docker pull`, and mmdebstrap "
            "(which makes a stand-in from Debian's packages) is not installed (.ci/run installs it)"
        )
    make_stand_in(name)
    return name


def host_pip_settings() -> dict[str, str]:
    """What this machine's pip uses to reach the index and a build container can use too.

    file:// indexes on this machine's disk are left out: a build cannot read them.
    """
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    found: dict[str, str] = {}
    for line in listed.splitlines():
        key, _, value = line.partition("=")
        name = key.rsplit(".", 1)[-1]
        found.setdefault(name, value.strip().strip("'\""))  # the environment's come first
    for name in ("cert", "index-url", "extra-index-url", "trusted-host", "default-timeout"):
        env = os.environ.get("PIP_" + name.upper().replace("-", "_"))
        if env:
            found[name] = env
    wanted = {}
    if found.get("cert") and Path(found["cert"]).is_file():
        wanted["cert"] = found["cert"]
    for name in ("index-url", "extra-index-url"):
        urls = [u for u in found.get(name, "").split() if u.startswith(("http://", "https://"))]
        if urls:
            wanted[name] = " ".join(urls)
    for name in ("trusted-host", "default-timeout"):
        if found.get(name):
            wanted[name] = found[name]
    return wanted


def make_stand_in(name: str) -> None:
    """Debian bookworm's Python 3.11 with pip, imported into the engine as ``name``."""
    pip = host_pip_settings()
    with tempfile.TemporaryDirectory(prefix="stand-in-") as work:
        work_dir = Path(work)
        hooks = [
            # Debian marks its Python as managed by apt (PEP 668); python:*-slim is not.
            'rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED',
        ]
        conf = ["[global]"]
        if "cert" in pip:
            shutil.copy(pip.pop("cert"), work_dir / "pip-ca.crt")
            hooks.append(f"upload {work_dir / 'pip-ca.crt'} /etc/ssl/certs/pip-ca.crt")
            conf.append("cert = /etc/ssl/certs/pip-ca.crt")
        conf += [f"{key} = {value}" for key, value in pip.items()]
        (work_dir / "pip.conf").write_text("\n".join(conf) + "\n")
        hooks.append(f"upload {work_dir / 'pip.conf'} /etc/pip.conf")
        tarball = work_dir / "base.tar"
        build = subprocess.run(
            [
                "mmdebstrap",
                "--quiet",
                "--variant=minbase",
                f"--include={STAND_IN_PACKAGES}",
                *(f"--customize-hook={hook}" for hook in hooks),
                "bookworm",
                str(tarball),
            ],
            capture_output=True,
            text=True,
            timeout=600,
            stdin=subprocess.DEVNULL,
        )
        assert build.returncode == 0, f"mmdebstrap failed:\n{build.stdout}{build.stderr}"
        docker(
            "import",
            "--change",
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "--change",
            "ENV LANG=C.UTF-8",
            "--change",
            f"LABEL {STAND_IN_LABEL}=mmdebstrap",
            "--change",
            'CMD ["python3"]',
            str(tarball),
            name,
            timeout=300,
        )


def is_stand_in(tag: str) -> bool:
    return STAND_IN_LABEL in (image_inspect(tag)["Config"].get("Labels") or {})


# --- the build context and the image ---------------------------------------------------------


def dockerignore_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex: Go's filepath.Match, plus ``**`` for any depth."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def ignore_patterns() -> list[tuple[bool, str, re.Pattern[str]]]:
    """(is an exception, pattern, regex) for each line of .dockerignore, in order."""
    patterns = []
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
        patterns.append((negated, pattern, dockerignore_regex(pattern)))
    return patterns


def ignored(path: str, patterns) -> bool:
    """Docker's rule: the last pattern that matches the path or a parent of it wins."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for negated, _, regex in patterns:
        if any(regex.match(candidate) for candidate in candidates):
            excluded = not negated
    return excluded


def _may_match_inside(directory: str, pattern: str) -> bool:
    """Whether ``pattern`` could match ``directory`` or something inside it."""
    literal = re.split(r"[*?\[]", pattern, maxsplit=1)[0]
    if literal == pattern:
        return pattern == directory or pattern.startswith(directory + "/")
    return literal.startswith(directory + "/") or (directory + "/").startswith(literal)


def context_files() -> list[str]:
    """Every file `docker build .` sends, relative to the repository, sorted."""
    patterns = ignore_patterns()
    exceptions = [pattern for negated, pattern, _ in patterns if negated]
    files = []
    for directory, subdirs, names in os.walk(ROOT):
        rel_dir = os.path.relpath(directory, ROOT)
        prefix = "" if rel_dir == "." else rel_dir + "/"
        # An ignored directory is walked only if an exception could let something in it back.
        subdirs[:] = [
            s
            for s in subdirs
            if not ignored(prefix + s, patterns)
            or any(_may_match_inside(prefix + s, e) for e in exceptions)
        ]
        files += [prefix + n for n in names if not ignored(prefix + n, patterns)]
    return sorted(files)


def image_fingerprint(base_id: str) -> str:
    """A hash of what the image is made from: base, Dockerfile, .dockerignore, context."""
    digest = hashlib.sha256(base_id.encode())
    for rel in sorted({"Dockerfile", ".dockerignore", *context_files()}):
        path = ROOT / rel
        digest.update(f"\0{rel}\0{os.access(path, os.X_OK)}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class BuiltImage:
    tag: str
    base: str
    size: int
    base_size: int
    reused: bool  # found under its fingerprint: not built by this run
    stand_in: bool  # the base is the mmdebstrap stand-in, not the registry's image

    @property
    def config(self) -> dict:
        return image_inspect(self.tag)["Config"]


_built: BuiltImage | BaseException | None = None


def built_image() -> BuiltImage:
    """The image of this checkout, built at most once per test run (and reused across runs).

    A failure (or a skip) is remembered too: the next test that needs the image gets it
    at once instead of building again.
    """
    global _built
    if _built is None:
        try:
            _built = _build_image()
        except BaseException as error:
            _built = error
            raise
    if isinstance(_built, BaseException):
        raise _built
    return _built


def _build_image() -> BuiltImage:
    need_docker()
    remove_abandoned_containers()
    base = ensure_base_image()
    base_info = image_inspect(base)
    tag = f"{TEST_REPOSITORY}:{image_fingerprint(base_info['Id'])}"
    reused = image_exists(tag)
    if reused:
        docker("tag", tag, tag)  # marks it as in use (its LastTagTime)
    else:
        # --network host: the engine here has no bridge; pip reaches the index this way.
        docker("build", "--network", "host", "--tag", tag, str(ROOT), timeout=900)
    forget_unused_images(keep=tag)
    return BuiltImage(
        tag=tag,
        base=base,
        size=image_inspect(tag)["Size"],
        base_size=base_info["Size"],
        reused=reused,
        stand_in=is_stand_in(base),
    )


def forget_unused_images(keep: str) -> None:
    """Remove test images no run has used for a day: other checkouts' files, or older ones.

    Not sooner: another checkout's test run may be using its own image right now.
    """
    listed = docker("image", "ls", TEST_REPOSITORY, "--format", "{{.Repository}}:{{.Tag}}")
    for tag in listed.stdout.split():
        if tag == keep:
            continue
        last_tagged = image_inspect(tag).get("Metadata", {}).get("LastTagTime", "")
        # Docker writes nanoseconds; Python reads at most microseconds.
        stamp = re.sub(r"(\.\d{6})\d+", r"\1", last_tagged.replace("Z", "+00:00"))
        with contextlib.suppress(ValueError):
            if time.time() - datetime.fromisoformat(stamp).timestamp() > UNUSED_IMAGE_KEPT:
                docker("image", "rm", tag, check=False)


def image_files(tag: str) -> dict[str, tuple[int, int, int]]:
    """Every path in the image's file system: {path: (mode, uid, gid)}, from `docker export`.

    A real listing of the layers as a container sees them, independent of the tools
    the image holds.
    """
    created = docker("create", "--label", f"{OWNER_LABEL}={os.getpid()}", tag).stdout.strip()
    try:
        exporter = subprocess.Popen(["docker", "export", created], stdout=subprocess.PIPE)
        assert exporter.stdout is not None
        files = {}
        with tarfile.open(fileobj=exporter.stdout, mode="r|") as tar:
            for member in tar:
                files["/" + member.name.strip("/")] = (member.mode, member.uid, member.gid)
        assert exporter.wait(timeout=120) == 0
        return files
    finally:
        docker("rm", "--force", created, check=False)


# --- containers -------------------------------------------------------------------------------


def remove_abandoned_containers() -> None:
    """Containers of test processes that no longer run (killed before their cleanup)."""
    listed = docker(
        "ps",
        "--all",
        "--filter",
        f"label={OWNER_LABEL}",
        "--format",
        f'{{{{.ID}}}} {{{{.Label "{OWNER_LABEL}"}}}}',
    )
    abandoned = []
    for line in listed.stdout.splitlines():
        container_id, _, owner = line.partition(" ")
        if not owner.isdigit() or not Path(f"/proc/{owner}").exists():
            abandoned.append(container_id)
    if abandoned:
        docker("rm", "--force", *abandoned, check=False)


_containers_named = itertools.count()


def _container_name() -> str:
    return f"{TEST_REPOSITORY}-{os.getpid()}-{next(_containers_named)}"


@dataclass
class Container:
    """A detached container of the test image on a free loopback port (--network host).

    Named before it is created, so that it can be removed even when `docker run`
    created it and then failed to start it.
    """

    image: str
    options: Sequence[str] = ()
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    name: str = field(default_factory=_container_name)
    id: str = ""

    def start(self) -> Container:
        environment = {
            "SECRET_KEY": SECRET,
            # With the host's network the container binds the host's interfaces: loopback only.
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            **self.env,
        }
        args = ["run", "--detach", "--name", self.name, "--network", "host"]
        args += ["--label", f"{OWNER_LABEL}={os.getpid()}"]
        for key, value in environment.items():
            args += ["--env", f"{key}={value}"]
        self.id = docker(*args, *self.options, self.image).stdout.strip()
        return self

    def inspect(self) -> dict:
        return json.loads(docker("inspect", self.id).stdout)[0]

    @property
    def state(self) -> dict:
        return self.inspect()["State"]

    @property
    def pid(self) -> int:
        """PID 1 of the container, as the host numbers it."""
        return self.state["Pid"]

    def logs(self) -> str:
        result = docker("logs", self.id, check=False)
        return result.stdout + result.stderr

    def wait_ready(self, path: str = "/readyz", timeout: float = 30.0) -> Container:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.state["Running"]:
                raise AssertionError(f"the container exited before it was ready:\n{self.logs()}")
            with contextlib.suppress(OSError):
                if get(self.port, path, timeout=2).status == 200:
                    return self
            time.sleep(0.1)
        raise AssertionError(f"the container was not ready in {timeout}s:\n{self.logs()}")

    def processes(self) -> list[int]:
        """Host pids of every process in the container: PID 1 and its descendants."""
        return process_tree(self.pid)

    def workers(self) -> list[int]:
        """gunicorn's workers: the children of its master, PID 1."""
        return [p for p in self.processes() if parent_of(p) == self.pid]

    def wait_workers_booted(self, expected: int, timeout: float = 20.0) -> list[int]:
        """Until ``expected`` workers have their own signal handlers (a booted worker
        catches SIGABRT; the master does not), then the workers there are."""
        abrt = 1 << (signal.SIGABRT - 1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            booted = [w for w in self.workers() if caught_signals(w) & abrt]
            if len(booted) >= expected:
                return self.workers()
            time.sleep(0.05)
        raise AssertionError(
            f"{len(self.workers())} workers, not {expected}, booted in {timeout}s:\n{self.logs()}"
        )

    def wait_health(self, wanted: str = "healthy", timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        health: dict = {}
        while time.monotonic() < deadline:
            health = self.state.get("Health") or {}
            if health.get("Status") == wanted:
                return health
            time.sleep(0.2)
        raise AssertionError(f"health never became {wanted!r}: {health}\n{self.logs()}")

    def remove(self) -> None:
        docker("rm", "--force", "--volumes", self.name, check=False)


@contextlib.contextmanager
def running_container(
    image: str, options: Sequence[str] = (), env: dict[str, str] | None = None, ready: bool = True
) -> Iterator[Container]:
    """A started container (ready on /readyz unless told not to wait), removed afterwards."""
    container = Container(image, options, dict(env or {}))
    try:
        container.start()
        if ready:
            container.wait_ready()
        yield container
    finally:
        container.remove()


class DockerStopped:
    """A container seen as tests.live sees a server: ``signal(SIGTERM)`` is `docker stop`.

    `docker stop` sends the image's stop signal, waits ``stop_timeout`` seconds and then
    kills; the exit code is the container's, so 137 means it had to be killed.
    """

    def __init__(self, container: Container, stop_timeout: int = 10) -> None:
        self.container = container
        self.stop_timeout = stop_timeout
        self._stopping: subprocess.Popen | None = None

    def signal(self, sig: int) -> None:
        assert sig == signal.SIGTERM, "docker stop sends SIGTERM"
        self._stopping = subprocess.Popen(
            ["docker", "stop", "--time", str(self.stop_timeout), self.container.id],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def wait_exit(self, timeout: float = 20.0) -> int:
        assert self._stopping is not None, "signal() first"
        self._stopping.wait(timeout=max(timeout, self.stop_timeout + 5))
        return self.container.state["ExitCode"]

    @property
    def stdout(self) -> str:
        return self.container.logs()

    stderr = ""


# --- processes, from the host's /proc ----------------------------------------------------------


def _status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


def parent_of(pid: int) -> int:
    try:
        return int(_status(pid)["PPid"])
    except (OSError, KeyError, ValueError):
        return -1


def caught_signals(pid: int) -> int:
    try:
        return int(_status(pid)["SigCgt"], 16)
    except (OSError, KeyError, ValueError):
        return 0


def process_status(pid: int) -> dict[str, str]:
    """/proc/PID/status as a dict (Uid, Gid, CapEff, NoNewPrivs, Seccomp, ...)."""
    return _status(pid)


def command_line(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").decode().split("\0")


def mounts(pid: int) -> dict[str, tuple[str, set[str]]]:
    """{mount point: (file system type, options)} as the process sees them."""
    found = {}
    for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
        fields = line.split()
        separator = fields.index("-")
        options = set(fields[5].split(",")) | set(fields[separator + 3].split(","))
        found[fields[4]] = (fields[separator + 1], options)
    return found


def image_size_mb(size: int) -> str:
    return f"{size / 1_000_000:.0f} MB"

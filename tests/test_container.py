"""The image, built from the Dockerfile and run by a real Docker engine.

Built once per test run (tests.container_support.built_image, reused across runs while
the files it is made from stay the same). Containers run as Kubernetes' restricted
profile would have them: read-only root, a tmpfs /tmp, no capabilities, no privilege
escalation, on a free loopback port of the host's network.
"""

from __future__ import annotations

import json
import os
import re
import signal

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.container_support import (
    BuiltImage,
    Container,
    DockerStopped,
    built_image,
    caught_signals,
    command_line,
    context_files,
    docker,
    image_files,
    image_size_mb,
    mounts,
    process_status,
    running_container,
)
from tests.live import assert_serves_the_endpoints, sigterm_during_slow_uploads
from tests.support import get

# Slow; and the first test also waits for the image: on a machine without it, up to a few
# minutes to make the base image from Debian's packages and build on it.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

# What Kubernetes' restricted Pod Security profile asks of a container, in docker run's terms.
RESTRICTED = (
    "--read-only",
    "--tmpfs",
    "/tmp",
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges",
)
# The Dockerfile's first check comes after 30 s; here after one.
QUICK_HEALTH = ("--health-interval", "1s", "--health-timeout", "5s", "--health-retries", "3")
# Never in the image, wherever they are in the checkout.
KEPT_OUT = (".env", ".git", ".venv", "tests", "bench", "deploy", "docs", ".ci")
BYTECODE = re.compile(r"/?__pycache__/[^/]+\.(cpython-\d+)\.pyc$")


def bytecode_path(module: str, tag: str) -> str:
    """Where Python looks for the bytecode of ``module`` (a path like app/views.py)."""
    directory, _, name = module.rpartition("/")
    cached = f"__pycache__/{name[: -len('.py')]}.{tag}.pyc"
    return f"{directory}/{cached}" if directory else cached


@pytest.fixture(scope="session")
def image() -> BuiltImage:
    return built_image()


@pytest.fixture(scope="module")
def restricted(image: BuiltImage):
    """One CPU, restricted, quick health checks: shared by the tests that only look."""
    with running_container(image.tag, [*RESTRICTED, *QUICK_HEALTH, "--cpus", "1"]) as container:
        yield container


def test_image_holds_only_what_the_app_needs(image):
    files = image_files(image.tag)
    under_app = [path[len("/app/") :] for path in files if path.startswith("/app/")]
    top_level = {path.split("/")[0] for path in under_app}
    let_in = {path.split("/")[0] for path in context_files()}
    assert top_level == let_in | {"__pycache__"}, (
        "the image's /app is not what .dockerignore lets in"
    )
    assert {"app", "launchers", "settings", "wsgi.py", "gunicorn_config.py"} <= top_level
    for path in under_app:
        assert not set(path.split("/")) & set(KEPT_OUT), path
    # Owned by root and writable by nobody else: the app cannot change its own code.
    writable = [
        path
        for path in under_app
        if files["/app/" + path][1] != 0 or files["/app/" + path][0] & 0o022
    ]
    assert writable == []
    # Every module's bytecode is compiled in: a read-only root could never cache it.
    tags = {m[1] for p in under_app if (m := BYTECODE.search(p))}
    assert len(tags) == 1, tags
    (tag,) = tags
    without_bytecode = [
        module
        for module in under_app
        if module.endswith(".py") and bytecode_path(module, tag) not in under_app
    ]
    assert without_bytecode == []
    # No pip cache, no compiler, none of the dependencies' own test suites.
    assert not [path for path in files if "/.cache/pip" in path or path.startswith("/root/.cache")]
    assert not {"/usr/bin/gcc", "/usr/bin/cc", "/usr/bin/make"} & set(files)
    assert not [path for path in files if path.endswith(("/gevent/tests", "/greenlet/tests"))]


def test_image_is_small_over_its_base(image, record_property):
    added = image.size - image.base_size
    record_property("image_size", image_size_mb(image.size))
    record_property("base_size", image_size_mb(image.base_size))
    # The app and its dependencies are about 20 MB; far more means something slipped in.
    assert added < 40_000_000, f"the image adds {image_size_mb(added)} to its base"


def test_image_runs_as_a_numbered_non_root_user(image):
    user = image.config["User"]
    uid, _, gid = user.partition(":")
    # Numeric, so Kubernetes' runAsNonRoot can check it without reading /etc/passwd.
    assert uid.isdigit() and int(uid) != 0 and (not gid or gid.isdigit()), user
    assert "5000/tcp" in image.config["ExposedPorts"]
    assert image.config["Env"] and "APP_ENV=production" in image.config["Env"]


def test_every_process_is_unprivileged(image, restricted):
    uid, _, gid = image.config["User"].partition(":")
    processes = restricted.processes()
    assert len(processes) >= 2  # gunicorn's master and at least one worker
    for pid in processes:
        status = process_status(pid)
        # Real, effective, saved and file-system ids: all the image's user, none root.
        assert set(status["Uid"].split()) == {uid}, (pid, status["Uid"])
        assert set(status["Gid"].split()) == {gid or uid}, (pid, status["Gid"])
        assert int(status["CapEff"], 16) == 0 and int(status["CapBnd"], 16) == 0
        assert status["NoNewPrivs"] == "1"
        # 2: a seccomp filter, Docker's default profile (Kubernetes' RuntimeDefault).
        assert status["Seccomp"] == "2"


def test_root_is_read_only_and_tmp_is_a_tmpfs(restricted):
    seen = mounts(restricted.pid)
    assert "ro" in seen["/"][1]
    assert seen["/tmp"][0] == "tmpfs" and "rw" in seen["/tmp"][1]


def test_pid_1_is_the_server_not_a_shell(restricted):
    argv = command_line(restricted.pid)
    assert os.path.basename(argv[0]).startswith("python") and argv[1].endswith("/gunicorn"), argv
    assert argv[2:] == ["-c", "gunicorn_config.py", "wsgi:app"]
    # A server as PID 1 handles the stop signal itself (the kernel drops the rest).
    assert caught_signals(restricted.pid) & (1 << (signal.SIGTERM - 1))


def test_serves_under_the_restricted_profile(restricted):
    assert_serves_the_endpoints(restricted.port, "gunicorn")
    assert restricted.state["Running"] and "Traceback" not in restricted.logs()


def test_docker_healthcheck_turns_healthy(restricted):
    health = restricted.wait_health("healthy")
    assert health["Log"] and health["Log"][-1]["ExitCode"] == 0


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="--cpus 2 needs a host with 2 CPUs")
def test_workers_follow_the_cpu_limit(image, restricted):
    with running_container(image.tag, [*RESTRICTED, "--cpus", "2"]) as two_cpus:
        for container, cpus in ((restricted, 1), (two_cpus, 2)):
            workers = container.wait_workers_booted(cpus)
            assert len(workers) == cpus, (cpus, workers, container.logs())
            assert container.logs().count("Booting worker with pid") == cpus


def test_docker_stop_drains_slow_uploads(image):
    with running_container(image.tag, [*RESTRICTED, "--cpus", "1"]) as container:
        container.wait_workers_booted(1)
        stopped = DockerStopped(container, stop_timeout=10)
        ready, echoed, code, log = sigterm_during_slow_uploads(stopped, container.port, uploads=3)
        assert ready in ("503", "refused"), log
        assert [status for status, _, _ in echoed] == [200, 200, 200], log
        for _, sent, body in echoed:
            assert json.loads(body) == {"received": json.loads(sent)}
        # 0: gunicorn drained and exited by itself; 137 would mean Docker had to kill it.
        assert code == 0, log
        assert not container.state["OOMKilled"]


def test_a_container_is_removed_even_when_its_test_fails(image):
    started: list[Container] = []
    with (
        pytest.raises(RuntimeError),
        running_container(image.tag, RESTRICTED, ready=False) as container,
    ):
        started.append(container)
        raise RuntimeError("the test failed here")
    (container,) = started
    assert container.id
    assert docker("inspect", container.name, check=False).returncode != 0


def test_metrics_add_up_across_workers_with_a_read_only_root(image):
    """METRICS=1 in the image: the launcher makes its folder in the tmpfs /tmp, never a
    person, and every scrape counts every request whichever of 2 workers answered."""
    env = {"METRICS": "1", "WEB_CONCURRENCY": "2"}
    with running_container(image.tag, [*RESTRICTED, "--cpus", "2"], env) as container:
        container.wait_workers_booted(2)
        for _ in range(40):
            assert get(container.port, "/api/info").status == 200
        counts = []
        for _ in range(3):
            families = text_string_to_metric_families(get(container.port, "/metrics").text)
            counts.append(
                sum(
                    s.value
                    for f in families
                    for s in f.samples
                    if s.name == "http_server_request_duration_seconds_count"
                    and s.labels.get("http_route") == "/api/info"
                )
            )
        logs = container.logs()
    assert counts == [40, 40, 40], (counts, logs[-2000:])
    assert "Traceback" not in logs

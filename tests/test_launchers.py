"""Launching: flags and variables, the gunicorn command, the development default.

What every launcher must do as a server is tests/test_contract.py.
"""

from __future__ import annotations

import signal
import subprocess

import pytest

from tests.live import LAUNCHER_NAMES, assert_serves_the_endpoints, need_launcher
from tests.support import (
    PYTHON,
    SECRET,
    as_nobody,
    assert_no_traceback,
    clean_env,
    free_port,
    get,
    listening_ports,
    process_tree,
    run_main,
    running,
)


@pytest.mark.parametrize("launcher", LAUNCHER_NAMES)
def test_flags_override_the_environment(launcher):
    need_launcher(launcher)
    port = free_port()
    # Every one of these is overridden by a flag below.
    env = clean_env(APP_LAUNCHER="dev", PORT=1, HOST="::1", FLASK_DEBUG=0, WEB_CONCURRENCY=1)
    args = [PYTHON, "main.py", "--launcher", launcher, "--host", "127.0.0.1", "--port", str(port)]
    with running(args, env, port) as server:
        assert get(port, "/api/info").json()["launcher"] == launcher
        assert listening_ports(process_tree(server.pid)) >= {("127.0.0.1", port)}


def test_host_is_honoured_all_interfaces():
    port = free_port()
    env = clean_env(APP_LAUNCHER="gunicorn", PORT=port, HOST="0.0.0.0", WEB_CONCURRENCY=1)
    with running([PYTHON, "main.py"], env, port) as server:
        assert ("0.0.0.0", port) in listening_ports(process_tree(server.pid))


@pytest.mark.parametrize("target", ["wsgi:app", "main:app"])
def test_gunicorn_command_with_the_config_file(target):
    port = free_port()
    env = clean_env(PORT=port, HOST="127.0.0.1", WEB_CONCURRENCY=1)
    args = [PYTHON, "-m", "gunicorn", "-c", "gunicorn_config.py", target]
    with running(args, env, port) as server:
        assert_serves_the_endpoints(port, "gunicorn")
        assert listening_ports(process_tree(server.pid)) == {("127.0.0.1", port)}


def test_gunicorn_config_rejects_a_bad_setting_without_traceback():
    env = clean_env(PORT="abc")
    result = subprocess.run(
        [PYTHON, "-m", "gunicorn", "-c", "gunicorn_config.py", "wsgi:app"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "PORT='abc'" in result.stderr
    assert_no_traceback(result.stderr)


@pytest.mark.slow  # makes the unprivileged sandbox
def test_gunicorn_as_nobody_without_a_home_logs_no_error(sandbox):
    port = free_port()
    env = sandbox.env(
        PORT=port,
        HOST="127.0.0.1",
        WEB_CONCURRENCY=1,
        APP_ENV="production",
        SECRET_KEY=SECRET,
        HOME="/nonexistent",
    )
    args = [str(sandbox.python), "main.py"]
    with running(args, env, port, cwd=sandbox.project, preexec=as_nobody) as server:
        info = get(port, "/api/info").json()
        assert info["launcher"] == "gunicorn" and info["env"] == "production"
        server.signal(signal.SIGTERM)
        assert server.wait_exit() == 0
        log = server.stderr + server.stdout
        assert "[ERROR]" not in log and "Permission denied" not in log, log
        assert_no_traceback(log)


def test_config_command_shows_values_and_sources(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("LOG_LEVEL=warning\n")
    env = clean_env(ENV_FILE=str(dotenv), PORT=6001, SECRET_KEY=SECRET)
    result = run_main("config", "--host", "127.0.0.1", env=env)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert "6001" in rows["PORT"] and "environment" in rows["PORT"]
    assert "127.0.0.1" in rows["HOST"] and "flag --host" in rows["HOST"]
    assert "warning" in rows["LOG_LEVEL"] and ".env" in rows["LOG_LEVEL"]
    assert "default" in rows["WEB_CONCURRENCY"]
    assert SECRET not in result.stdout and "hidden" in rows["SECRET_KEY"]


def test_help_describes_commands_variables_and_exit_codes():
    result = run_main("--help", env=clean_env())
    assert result.returncode == 0
    for word in (
        "config",
        "doctor",
        "--launcher",
        "--port",
        "PORT",
        "APP_LAUNCHER",
        "SECRET_KEY",
        "exit codes",
    ):
        assert word in result.stdout


def test_main_app_is_built_on_first_access_only():
    code = "import main, sys; assert 'wsgi' not in sys.modules; print(type(main.app).__name__)"
    result = subprocess.run(
        [PYTHON, "-c", code], env=clean_env(), capture_output=True, text=True, timeout=30
    )
    assert result.stdout.strip() == "Flask", result.stderr


def test_development_default_runs_the_reloader_and_debugger():
    """`python main.py` as the README says: dev server, reloader child, debugger on."""
    port = free_port()
    env = clean_env(PORT=port, HOST="127.0.0.1")
    with running([PYTHON, "main.py"], env, port) as server:
        assert get(port, "/api/info").json()["launcher"] == "dev"
        assert len(process_tree(server.pid)) >= 2  # the reloader's parent and its child
        assert "Debugger is active" in server.stderr + server.stdout
        assert "already in use" not in server.stderr


def test_gunicorn_config_is_the_gunicorn_launcher_whatever_app_launcher_says():
    port = free_port()
    env = clean_env(
        PORT=port,
        HOST="127.0.0.1",
        WEB_CONCURRENCY=1,
        APP_LAUNCHER="dev",
        APP_ENV="production",
        SECRET_KEY=SECRET,
    )
    args = [PYTHON, "-m", "gunicorn", "-c", "gunicorn_config.py", "wsgi:app"]
    with running(args, env, port) as server:
        assert get(port, "/api/info").json()["launcher"] == "gunicorn"
        assert "development SECRET_KEY" not in server.stderr


def test_a_production_server_without_app_env_warns_about_the_development_key():
    port = free_port()
    env = clean_env(PORT=port, HOST="127.0.0.1", WEB_CONCURRENCY=1)
    args = [PYTHON, "-m", "gunicorn", "-c", "gunicorn_config.py", "wsgi:app"]
    with running(args, env, port) as server:
        assert get(port, "/api/info").json()["env"] == "development"
        assert server.stderr.count("fixed development SECRET_KEY") == 1, server.stderr


def test_a_stop_signal_between_fork_and_post_fork_is_kept():
    """The master's handler, still in place in a just-forked worker, only queues a signal."""
    import queue
    import signal
    from types import SimpleNamespace

    from launchers.gunicorn import STOP_SIGNALS, post_fork

    early = queue.SimpleQueue()
    early.put_nowait(signal.SIGCHLD)
    early.put_nowait(signal.SIGTERM)
    worker = SimpleNamespace(alive=True)
    before = signal.pthread_sigmask(signal.SIG_BLOCK, set())
    try:
        post_fork(SimpleNamespace(SIG_QUEUE=early), worker)
        assert worker.alive is False
        assert STOP_SIGNALS <= signal.pthread_sigmask(signal.SIG_BLOCK, set())
        calm = SimpleNamespace(alive=True)
        post_fork(SimpleNamespace(SIG_QUEUE=queue.SimpleQueue()), calm)
        assert calm.alive is True
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


GUNICORN_WORKERS = {
    "gevent": "gunicorn.workers.ggevent:GeventWorker",
    "sync": "gunicorn.workers.sync:SyncWorker",
    "gthread": "gunicorn.workers.gthread:ThreadWorker",
    "gevent_pywsgi": "gunicorn.workers.ggevent:GeventPyWSGIWorker",  # gevent's own parser
}


def gunicorn_worker(kind: str, cfg, app):
    """A worker of that class as post_worker_init sees it: its cfg, and the app loaded."""
    import importlib

    module, name = GUNICORN_WORKERS[kind].split(":")
    worker = object.__new__(getattr(importlib.import_module(module), name))
    worker.cfg, worker.wsgi = cfg, app
    return worker


@pytest.mark.parametrize(
    ("kind", "changed", "left_to_gunicorn"),
    [
        ("gevent", {}, True),  # the limits options() sets
        ("sync", {}, True),
        ("gthread", {}, True),
        ("gevent", {"limit_request_line": 4094}, True),  # stricter
        ("gevent", {"limit_request_line": 0}, False),  # gunicorn: no limit
        ("gevent", {"limit_request_fields": 200}, False),
        ("gevent", {"limit_request_field_size": 16380}, False),
        ("gevent", {"limit_request_field_size": 0}, False),  # gunicorn's 8190; not assumed
        ("gevent", {"http_protocols": ["h2", "h1"]}, False),  # HTTP/2: its own rules
        ("gevent_pywsgi", {}, False),  # its parser ignores limit_request_*
    ],
)
def test_the_app_leaves_the_head_limits_to_gunicorn_only_while_gunicorn_holds_them(
    kind, changed, left_to_gunicorn
):
    from types import SimpleNamespace

    from app import create_app
    from launchers.gunicorn import options
    from launchers.gunicorn_parser import leave_head_limits_to_gunicorn
    from settings import load_settings

    limits = ("limit_request_line", "limit_request_fields", "limit_request_field_size")
    configured = options(load_settings({}, dotenv_path=None))
    cfg = SimpleNamespace(**{name: configured[name] for name in limits}, http_protocols=["h1"])
    vars(cfg).update(changed)
    app = create_app({"APP_ENV": "testing"})
    assert leave_head_limits_to_gunicorn(gunicorn_worker(kind, cfg, app)) is left_to_gunicorn
    assert app.extensions["request_layer"].server_checks_head is left_to_gunicorn

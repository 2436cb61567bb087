"""Every shell command the docs give works as written, or says why it cannot run here.

tests/docs_commands.py finds each command in README.md, docs/, deploy/ and the comments of
the files people copy. Each one is in exactly one of three places below:

- ``RUN``: run here, as written, in a copy of the project; only a port a test cannot take
  (5000, 80) is replaced by a free one;
- ``RUN_ELSEWHERE_IN_THE_SUITE``: what it does needs this machine changed (a file in /etc,
  setcap, port 80, a Docker bridge), so the test named beside it does the same on a copy;
- ``ANOTHER_PLATFORM``: it needs a platform this machine is not (Heroku, Fly.io, a
  Kubernetes cluster, Windows, a real systemd as PID 1), with the reason.

A command in none of them, or an entry no doc gives any more, fails here.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.docs_commands import commands
from tests.support import (
    ROOT,
    assert_no_traceback,
    clean_env,
    free_port,
    get,
)

FOUND = commands()

# --- run here, as written ---------------------------------------------------------------

README_RUN = (
    "python3 -m venv .venv && .venv/bin/pip install -r requirements.txt && .venv/bin/python main.py"
)
METRICS_BLOCK = (
    "APP_ENV=production SECRET_KEY=\"$(python3 -c 'import secrets; print(secrets.token_hex(32))')\" "
    "METRICS=1 WEB_CONCURRENCY=2 HOST=127.0.0.1 .venv/bin/python main.py &",
    "sleep 2",
    "curl -s http://127.0.0.1:5000/api/info >/dev/null",
    "curl -s http://127.0.0.1:5000/metrics | grep http_server_request_duration_seconds_count",
)
# Servers: each must answer /healthz, then stop on SIGTERM without a traceback.
SERVERS = (
    README_RUN,
    ".venv/bin/gunicorn -c gunicorn_config.py wsgi:app",
    "gunicorn -c gunicorn_config.py wsgi:app",  # in an activated venv
    'PATH="$PWD/.venv/bin:$PATH" APP_ENV=production SECRET_KEY=$(python3 -c \'import secrets; '
    "print(secrets.token_hex(32))') .venv/bin/honcho start -p 5000 web",
    "REPLIT_DEPLOYMENT=1 SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))') "
    'PATH="$PWD/.venv/bin:$PATH" bash flask_deploy.sh',
)
# Commands that must exit 0; the first two on the README's new .venv, after its first command.
FRESH_VENV = (
    ".venv/bin/pip install -r bench/requirements.txt",
    "python3 -m venv --copies --clear .venv && .venv/bin/pip install -r requirements.txt",
)
EXITS_0 = (
    "export SECRET_KEY=\"$(python3 -c 'import secrets; print(secrets.token_hex(32))')\"",
    "export APP_ENV=production SECRET_KEY=...",
)
RUN = {*SERVERS, *FRESH_VENV, *EXITS_0, *METRICS_BLOCK}

# --- what needs this machine changed: the same, on a copy, by another test ------------------

VERIFY = "tests/test_platforms.py::test_systemd_analyze_verifies_the_unit"
NGINX = "tests/test_nginx.py::test_the_shipped_site_differs_only_in_the_two_ports"
SETCAP = "tests/test_failures.py::test_setcap_on_the_real_interpreter_lets_nobody_bind_port_80"
RESTRICTED = "tests/test_container.py::test_serves_under_the_restricted_profile"
TREE = "tests/test_platforms.py::unit_tree"
SITE = "tests/nginx_support.py::nginx_in_front (the site as the only one nginx includes)"
RUN_ELSEWHERE_IN_THE_SUITE = {
    "python3 -m venv .venv && .venv/bin/pip install -r requirements-dev.txt && "
    ".venv/bin/python -m pytest": ".ci/run: CI runs exactly this command (here it would recurse)",
    ".venv/bin/python -m bench": "tests/test_bench.py::test_bench_smoke_runs_end_to_end "
    "(--smoke: the whole run takes minutes)",
    "docker build -t flask-app .": "tests/test_container.py::test_image_holds_only_what_the_app_needs"
    " (built on a stand-in base: no image registry here)",
    "docker run --rm -p 80:5000 -e SECRET_KEY=\"$(python3 -c 'import secrets; "
    "print(secrets.token_hex(32))')\" flask-app": RESTRICTED + " (on the host network: -p needs "
    "Docker's bridge, which this machine cannot make)",
    "docker run --rm -p 80:5000 -e SECRET_KEY=... --read-only --tmpfs /tmp --cap-drop ALL "
    "--security-opt no-new-privileges flask-app": RESTRICTED + " (the same flags, host network)",
    "docker run -p 80:5000 flask-app": RESTRICTED + " (host network)",
    "prometheus --config.file=prometheus.yml --storage.tsdb.path=/tmp/prometheus-data "
    "--web.listen-address=127.0.0.1:9091 &": "tests/test_metrics_live.py::"
    "test_a_real_prometheus_scrapes_the_same_count (the same flags, a free port)",
    "curl -s http://127.0.0.1:9091/api/v1/query --data-urlencode 'query=up{job=\"flask-app\"}'": (
        "tests/test_metrics_live.py::test_a_real_prometheus_scrapes_the_same_count"
    ),
    "sudo setcap 'cap_net_bind_service=+ep' \"$(readlink -f .venv/bin/python)\"": SETCAP,
    "for py in .venv/bin/python .venv/bin/python3 .venv/bin/python3.*; do sudo setcap "
    "'cap_net_bind_service=+ep' \"$py\"; done": SETCAP,
    "APP_ENV=production SECRET_KEY=... .venv/bin/python main.py --port 80": SETCAP,
    "systemd-analyze verify /etc/systemd/system/flask-app.service": VERIFY,
    "sudo systemd-analyze verify /etc/systemd/system/flask-app.service": VERIFY,
    "curl -s http://127.0.0.1:8000/api/info": "tests/test_platforms.py::"
    "test_systemd_exec_start_serves_as_systemd_would_run_it",
    "nginx -t && systemctl reload nginx": NGINX + " (nginx -t on the site, in a prefix)",
    "sudo nginx -t && sudo systemctl reload nginx": NGINX + " (nginx -t on the site, in a prefix)",
    "sh deploy/systemd/instance-template.sh | sudo tee /etc/systemd/system/flask-app@.service "
    ">/dev/null": "tests/test_platforms.py::"
    "test_the_instance_template_is_the_unit_with_its_port_as_the_instance_name",
    "sudo sh deploy/rolling-restart.sh 8000 8001": "tests/test_zero_downtime.py::"
    "test_the_rolling_restart_script_behind_nginx_loses_no_request (systemctl stood in for)",
    "sudo systemctl reload flask-app": "tests/test_zero_downtime.py::"
    "test_hup_serves_the_code_now_on_disk_and_loses_no_request (the HUP ExecReload sends)",
    # A VPS's /srv and /etc, set up under a temporary root by the unit tests' fixture, and the
    # nginx site included from a prefix: the same files in the same places below it.
    "git clone https://example.com/you/flask-app.git /srv/flask-app": TREE,
    "python3 -m venv /srv/flask-app/.venv": TREE,
    "/srv/flask-app/.venv/bin/pip install -r /srv/flask-app/requirements.txt": TREE,
    "install -d -m 0700 /etc/flask-app": TREE,
    "sudo install -d -m 0700 /etc/flask-app": TREE,
    "python3 -c 'import secrets; print(\"SECRET_KEY=\" + secrets.token_hex(32))' > "
    "/etc/flask-app/env": TREE,
    "python3 -c 'import secrets; print(\"SECRET_KEY=\" + secrets.token_hex(32))' | sudo tee "
    "/etc/flask-app/env >/dev/null": TREE,
    "chmod 0600 /etc/flask-app/env": TREE,
    "sudo chmod 0600 /etc/flask-app/env": TREE,
    "cp /srv/flask-app/deploy/systemd/flask-app.service /etc/systemd/system/": VERIFY,
    "sudo cp deploy/systemd/flask-app.service /etc/systemd/system/": VERIFY,
    "cp /srv/flask-app/deploy/nginx/flask-app.conf /etc/nginx/sites-available/flask-app": SITE,
    "sudo cp deploy/nginx/flask-app.conf /etc/nginx/sites-available/flask-app": SITE,
    "ln -s /etc/nginx/sites-available/flask-app /etc/nginx/sites-enabled/flask-app": SITE,
    "sudo ln -s /etc/nginx/sites-available/flask-app /etc/nginx/sites-enabled/flask-app": SITE,
    "rm /etc/nginx/sites-enabled/default": SITE,
    "sudo rm /etc/nginx/sites-enabled/default": SITE,
}

# --- another platform ---------------------------------------------------------------------

SYSTEMD = "systemctl needs systemd running as PID 1, which this machine (a container) lacks"
VPS_ROOT = "pulls from your repository's remote, as root on the server"
HEROKU = "Heroku: needs its account and CLI"
FLY = "Fly.io: needs its account and CLI"
CLUSTER = "needs a Kubernetes cluster (none can be had here); the manifests are validated"
REGISTRY = "pushes to an image registry; none is reachable from here"
WINDOWS = "Windows PowerShell; tests/test_windows.py runs on the Windows CI job"
APT = "installs Debian packages as root; .ci/run installs the same ones"
IPTABLES = "rewrites this machine's firewall as root"
COMPOSE = "compose's nginx reaches the replicas at private container addresses (not loopback)"
ANOTHER_PLATFORM = {
    "sudo apt-get install -y wrk && .venv/bin/pip install -r bench/requirements.txt": APT,
    "sudo apt-get install -y wrk": APT,
    "apt-get install -y nginx python3-venv git": APT,
    "sudo apt-get install iptables-persistent && sudo netfilter-persistent save": APT,
    "fly launch --no-deploy": FLY,
    "fly secrets set SECRET_KEY=\"$(python3 -c 'import secrets; print(secrets.token_hex(32))')\"": FLY,
    "fly deploy": FLY,
    "docker build -t registry.example.com/flask-app:1.0.0 .": REGISTRY,
    "docker push registry.example.com/flask-app:1.0.0": REGISTRY,
    "kubectl create secret generic flask-app --from-literal=SECRET_KEY=\"$(python3 -c 'import "
    "secrets; print(secrets.token_hex(32))')\"": CLUSTER,
    "kubectl apply -k deploy/kubernetes": CLUSTER,
    "kubectl rollout status deployment/flask-app": CLUSTER,
    "kubectl port-forward service/flask-app 8080:80 &": CLUSTER,
    "curl -s http://127.0.0.1:8080/api/info": CLUSTER,
    "sudo iptables -t nat -A PREROUTING -p tcp --dport 80 -j REDIRECT --to-ports 5000": IPTABLES,
    "sudo iptables -t nat -A OUTPUT -o lo -p tcp --dport 80 -j REDIRECT --to-ports 5000": IPTABLES,
    "sudo --preserve-env=APP_ENV,SECRET_KEY .venv/bin/python main.py --port 80": (
        "serves as root on port 80 of this machine; the warning it gives is tested in "
        "tests/test_dev_server.py and the refusal without APP_ENV in tests/test_failures.py"
    ),
    "heroku create": HEROKU,
    "heroku config:set APP_ENV=production TRUSTED_PROXY_HOPS=1 SECRET_KEY=\"$(python3 -c 'import "
    "secrets; print(secrets.token_hex(32))')\"": HEROKU,
    "git push heroku main": HEROKU,
    "curl -s http://your-server/api/info": "your server's own name",
    "cd /srv/flask-app && sudo git pull && sudo .venv/bin/pip install -r requirements.txt": VPS_ROOT,
    "systemctl daemon-reload": SYSTEMD,
    "systemctl enable --now flask-app": SYSTEMD,
    "systemctl status flask-app": SYSTEMD,
    "sudo systemctl daemon-reload": SYSTEMD,
    "sudo systemctl disable --now flask-app": SYSTEMD,
    "sudo systemctl enable --now flask-app@8000 flask-app@8001": SYSTEMD,
    "sudo systemctl daemon-reload && sudo systemctl enable --now flask-app": SYSTEMD,
    "sudo systemctl daemon-reload && sudo systemctl enable --now flask-app@8000 flask-app@8001": (
        SYSTEMD
    ),
    "py -3.11 -m venv .venv": WINDOWS,
    ".venv\\Scripts\\pip install -r requirements.txt": WINDOWS,
    '$env:APP_ENV = "production"': WINDOWS,
    '$env:SECRET_KEY = (.venv\\Scripts\\python -c "import secrets; print(secrets.token_hex(32))")': (
        WINDOWS
    ),
    ".venv\\Scripts\\python main.py": WINDOWS,
    "nssm install flask-app C:\\srv\\flask-app\\.venv\\Scripts\\python.exe main.py": WINDOWS,
    "nssm set flask-app AppDirectory C:\\srv\\flask-app": WINDOWS,
    "nssm set flask-app AppEnvironmentExtra APP_ENV=production SECRET_KEY=...": WINDOWS,
    "nssm start flask-app": WINDOWS,
    "docker compose up --detach --build": COMPOSE,
    "docker compose up --build --detach": COMPOSE,
    "curl -s http://127.0.0.1/api/info": COMPOSE,
}


def test_every_command_the_docs_give_is_run_or_said_to_need_another_platform():
    placed = [RUN, RUN_ELSEWHERE_IN_THE_SUITE, ANOTHER_PLATFORM]
    unplaced = {c: where for c, where in FOUND.items() if not any(c in p for p in placed)}
    assert not unplaced, "commands in the docs with no place in this file:\n" + "\n".join(
        f"  {c!r}  ({', '.join(w)})" for c, w in unplaced.items()
    )
    twice = [c for c in FOUND if sum(c in p for p in placed) > 1]
    assert not twice, twice
    stale = [c for p in placed for c in p if c not in FOUND]
    assert not stale, f"entries no doc gives any more: {stale}"


def test_the_tests_named_for_commands_run_elsewhere_exist():
    for command, where in RUN_ELSEWHERE_IN_THE_SUITE.items():
        path, test = re.match(r"([\w./-]+?)(?:::(\w+))?(?:[ :]|$)", where).groups()
        assert (ROOT / path).is_file(), (command, where)
        if test:
            assert f"def {test}(" in (ROOT / path).read_text(), (command, where)


# --- running them ---------------------------------------------------------------------------


def with_port(command: str, port: int) -> str:
    """The command with the port a test cannot take (5000) replaced by ``port``."""
    return re.sub(r"\b5000\b", str(port), command)


def shell(command: str, project: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        ["bash", "-c", command],
        cwd=project,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stopped whole
    )


def stop(process: subprocess.Popen) -> tuple[int, str]:
    """SIGTERM to the command's process group (what it started too); its status and output."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        output, _ = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
    return process.returncode, output.decode(errors="replace")


def serves(process: subprocess.Popen, port: int, limit: float) -> bool:
    deadline = time.monotonic() + limit  # bounded: a pip install comes first in one case
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if get(port, "/healthz", timeout=2).status == 200:
                return True
        except OSError:
            time.sleep(0.2)
    return False


def fresh_env(project: Path, **extra: object) -> dict[str, str]:
    """The environment of a shell in ``project``; `gunicorn` on PATH as in an activated venv."""
    env = clean_env(**extra)
    env["PATH"] = f"{project / '.venv' / 'bin'}:/usr/local/bin:/usr/bin:/bin"
    env.pop("VIRTUAL_ENV", None)
    return env


def copy_checkout(base: Path) -> Path:
    """The checkout as a fork of it holds it: every file, without what a run makes."""
    made = shutil.ignore_patterns(
        ".git", ".venv", "__pycache__", "node_modules", ".pytest_cache", ".ruff_cache", ".env"
    )
    return Path(shutil.copytree(ROOT, base / "project", ignore=made))


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Path:
    """A copy of the checkout without a .venv: the README's first command makes it."""
    return copy_checkout(tmp_path_factory.mktemp("docs-fresh"))


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A copy of the project whose .venv is the one the README's test command made (this
    suite's own), with every requirement file installed."""
    project = copy_checkout(tmp_path_factory.mktemp("docs-installed"))
    (project / ".venv").symlink_to(sys.prefix)
    return project


def run_server(command: str, project: Path, limit: float = 30) -> None:
    port = free_port()
    process = shell(with_port(command, port), project, fresh_env(project, PORT=port))
    up = serves(process, port, limit)
    _, output = stop(process)
    assert up, f"{command}\n{output[-3000:]}"
    assert_no_traceback(output)


def run_to_exit_0(command: str, project: Path) -> None:
    result = subprocess.run(
        ["bash", "-c", command],
        cwd=project,
        env=fresh_env(project),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}{result.stderr[-2000:]}"


@pytest.mark.slow
def test_the_readmes_first_command_installs_and_serves(fresh):
    run_server(README_RUN, fresh, limit=300)  # bounded: a pip install comes first


@pytest.mark.slow
@pytest.mark.parametrize("command", FRESH_VENV)
def test_a_command_on_a_new_venv_exits_0(command, fresh):
    run_to_exit_0(command, fresh)


@pytest.mark.slow
@pytest.mark.parametrize("command", [c for c in SERVERS if c != README_RUN])
def test_a_server_command_serves_as_written(command, installed):
    run_server(command, installed)


@pytest.mark.slow
@pytest.mark.parametrize("command", EXITS_0)
def test_a_command_exits_0_as_written(command, installed):
    run_to_exit_0(command, installed)


@pytest.mark.slow
def test_the_metrics_guide_shows_the_count_as_written(installed):
    port = free_port()
    script = "\n".join(with_port(line, port) for line in METRICS_BLOCK)
    process = shell(script, installed, fresh_env(installed, PORT=port))
    try:
        process.wait(timeout=60)  # the script; the server it started in the background runs on
    finally:
        _, output = stop(process)
    assert (
        'http_server_request_duration_seconds_count{http_request_method="GET",'
        'http_response_status_code="200",http_route="/api/info"} 1.0' in output
    ), output[-3000:]

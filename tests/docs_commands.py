"""Every shell command the docs give: README.md, docs/, deploy/, and the commands in the
comments of the files people copy (the unit, the nginx site, the scripts, the Dockerfile,
compose.yaml, gunicorn_config.py and wsgi.py); and the three lists each one must be in
(tests/test_docs_commands.py says what each list means, and runs the first)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from tests.support import ROOT

GUIDES = (
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    *sorted(ROOT.glob("deploy/**/*.md")),
)
COMMENTED = (
    ROOT / "Dockerfile",
    ROOT / "compose.yaml",
    ROOT / "deploy" / "nginx" / "flask-app.conf",
    ROOT / "deploy" / "systemd" / "flask-app.service",
    *sorted(ROOT.glob("deploy/**/*.sh")),
)
DOCSTRINGS = (ROOT / "wsgi.py", ROOT / "gunicorn_config.py")
SHELLS = {"sh", "bash", "shell", "console", "powershell"}

FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
COMMENTED_COMMAND = re.compile(r"^#   (\S.*)$")  # "#", three spaces, the command
CONTINUED = re.compile(r"^#\s+(\S.*)$")  # its next line, when it ends with a backslash
# Commented settings (a unit's Key=value, a Dockerfile's RUN ...) are examples, not commands.
NOT_A_COMMAND = re.compile(r"^[A-Z][A-Za-z]*(=| )")
DOCSTRING_COMMAND = re.compile(r"^    ((?:gunicorn|python|\.venv)\b.*)$")


def without_comment(line: str) -> str:
    """The line without a trailing ``# ...`` comment (a # outside quotes, after a blank)."""
    quote = ""
    for i, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip()
    return line.rstrip()


def logical_lines(lines: list[str]) -> Iterator[str]:
    """Lines joined where one ends with a backslash, blank lines and comments left out."""
    pending = ""
    for raw in lines:
        line = raw.strip()
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        command = without_comment(pending + line)
        pending = ""
        if command:
            yield command


def commented_lines(lines: list[str]) -> list[str]:
    """The commands in a file's comments, with the lines that continue them."""
    found: list[str] = []
    for line in lines:
        continued = CONTINUED.match(line) if found and found[-1].endswith("\\") else None
        match = continued or COMMENTED_COMMAND.match(line)
        if match:
            found.append(match[1])
    return found


def commands() -> dict[str, list[str]]:
    """Each command, as written, with the files it appears in."""
    found: dict[str, list[str]] = {}

    def add(command: str, path: Path) -> None:
        where = found.setdefault(command, [])
        name = path.relative_to(ROOT).as_posix()
        if name not in where:
            where.append(name)

    for path in GUIDES:
        for language, body in FENCE.findall(path.read_text()):
            if language in SHELLS:
                for command in logical_lines(body.splitlines()):
                    add(command, path)
    for path in COMMENTED:
        for command in logical_lines(commented_lines(path.read_text().splitlines())):
            if not NOT_A_COMMAND.match(command):
                add(command, path)
    for path in DOCSTRINGS:
        lines = [m[1] for m in map(DOCSTRING_COMMAND.match, path.read_text().splitlines()) if m]
        for command in logical_lines(lines):
            add(command, path)
    return found


# --- run here, as written ---------------------------------------------------------------

README_RUN = (
    "python3 -m venv .venv && .venv/bin/pip install -r requirements.txt && .venv/bin/python main.py"
)
METRICS_BLOCK = (
    "APP_ENV=production SECRET_KEY=\"$(python3 -c 'import secrets; print(secrets.token_hex(32))')\" "
    "METRICS=1 WEB_CONCURRENCY=2 HOST=127.0.0.1 .venv/bin/python main.py &",
    "until curl -fs http://127.0.0.1:5000/readyz >/dev/null; do sleep 0.2; done",
    "curl -s http://127.0.0.1:5000/api/info >/dev/null",
    "curl -s http://127.0.0.1:5000/metrics | grep http_server_request_duration_seconds_count",
    "kill %1",
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

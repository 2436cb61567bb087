"""compose.yaml: valid for Docker Compose, and in agreement with the image, the site and the settings.

It is validated by Debian's docker-compose (``docker-compose config``), not run: its
nginx reaches the replicas over a Compose network, at container addresses in a private
range, and the tests keep all traffic on loopback (the image itself is run by
tests/test_container.py, the site by tests/test_nginx.py and tests/test_zero_downtime.py).
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from settings import BY_ENV
from tests.nginx_support import SITE
from tests.support import ROOT, SECRET, clean_env, need_tool

COMPOSE = ROOT / "compose.yaml"


@pytest.fixture(scope="module")
def no_env_file(tmp_path_factory) -> Path:
    empty = tmp_path_factory.mktemp("compose") / "empty.env"
    empty.write_text("")
    return empty


@pytest.fixture(scope="module")
def resolved(no_env_file) -> dict:
    """The file as docker-compose reads it, SECRET_KEY given."""
    result = compose_config(clean_env(SECRET_KEY=SECRET), no_env_file)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def compose_config(env: dict[str, str], env_file: Path) -> subprocess.CompletedProcess:
    """``docker-compose config`` on compose.yaml with ``env`` and the empty ``env_file``:
    never a .env in the checkout (Compose reads one from the project folder by itself)."""
    compose = need_tool("docker-compose", "compose.yaml is validated by Docker Compose itself")
    return subprocess.run(
        [compose, "--file", str(COMPOSE), "--env-file", str(env_file), "config"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_compose_refuses_to_start_without_a_secret_key(no_env_file):
    result = compose_config(clean_env(), no_env_file)
    assert result.returncode != 0
    assert "set SECRET_KEY" in result.stderr, result.stderr


def test_two_replicas_of_the_image_behind_nginx(resolved):
    app, nginx = resolved["services"]["app"], resolved["services"]["nginx"]
    assert app["build"]["context"] == str(ROOT)
    assert app["deploy"]["replicas"] == 2
    assert "ports" not in app  # reached through nginx only
    assert app["environment"]["TRUSTED_PROXY_HOPS"] == "1"
    assert app["read_only"] is True and app["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in app["security_opt"]
    assert nginx["depends_on"]["app"]["condition"] == "service_healthy"  # the image's HEALTHCHECK
    assert nginx["ports"] == [{"published": 80, "target": 80}]


def test_the_replicas_drain_before_docker_kills_them(resolved):
    grace = resolved["services"]["app"]["stop_grace_period"]
    assert grace.endswith("s") and float(grace[:-1]) > BY_ENV["GRACEFUL_TIMEOUT"].default


def test_nginx_serves_the_shipped_site_with_only_its_upstream_changed(resolved):
    nginx = resolved["services"]["nginx"]
    (volume,) = nginx["volumes"]
    source, target, mode = volume.split(":")
    assert (source, mode) == (str(SITE), "ro")
    shell, flag, script = nginx["command"]
    assert (shell, flag) == ("sh", "-c")
    sed, _, rest = script.partition(f" {target} > ")
    assert rest.startswith("/etc/nginx/conf.d/default.conf && exec nginx ")  # nginx is PID 1
    rewritten = subprocess.run(
        [*_sed_args(sed), str(SITE)], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    changed = [
        (a.strip(), b.strip())
        for a, b in zip(SITE.read_text().splitlines(), rewritten.splitlines(), strict=True)
        if a != b
    ]
    port = BY_ENV["PORT"].default
    assert changed == [("server 127.0.0.1:8000 max_fails=0;", f"server app:{port} max_fails=0;")], (
        changed
    )


def _sed_args(command: str) -> list[str]:
    args = shlex.split(command)
    assert args[0] == "sed", command
    return args

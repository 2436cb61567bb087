"""The shipped nginx site, run by the real nginx for tests: the two lines a test rewrites
(the listen port and the upstream's server lines) and a main config that keeps every path nginx
writes inside a temporary folder."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support import ROOT, clean_env, free_port, need_tool, running

SITE = ROOT / "deploy" / "nginx" / "flask-app.conf"
UPSTREAM_PORT = 8000


def rewrite_site(text: str, listen_port: int, upstream_ports: int | Sequence[int]) -> str:
    """The shipped site with only its listen port and its upstream's server lines changed."""
    ports = [upstream_ports] if isinstance(upstream_ports, int) else list(upstream_ports)
    text, listens = re.subn(
        r"^(\s*)listen 80;", rf"\g<1>listen 127.0.0.1:{listen_port};", text, flags=re.M
    )
    text, upstreams = re.subn(
        rf"^(\s*)server 127\.0\.0\.1:{UPSTREAM_PORT}( [^;]*);",
        lambda m: "\n".join(f"{m[1]}server 127.0.0.1:{port}{m[2]};" for port in ports),
        text,
        flags=re.M,
    )
    assert (listens, upstreams) == (1, 1), "expected one active listen 80 and one upstream server"
    return text


def nginx_main_conf(prefix: Path, site: Path) -> str:
    """A main config that keeps every path nginx writes inside ``prefix``."""
    return f"""
daemon off;
worker_processes 1;
user nobody nogroup;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log notice;
events {{ worker_connections 256; }}
http {{
    default_type application/octet-stream;
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {site};
}}
"""


@contextmanager
def nginx_in_front(upstream_ports: int | Sequence[int], why: str) -> Iterator[tuple[int, Path]]:
    """The shipped site, run by the real nginx on a free port in front of ``upstream_ports``
    (already serving): yields nginx's port and the folder holding its logs."""
    nginx = need_tool("nginx", why)
    if os.geteuid() != 0:
        pytest.skip("nginx's master process needs root here (it switches workers to nobody)")
    port = free_port()
    prefix = Path(tempfile.mkdtemp(prefix="nginx-test-"))
    prefix.chmod(0o755)  # workers run as nobody and write request bodies under it
    try:
        site = prefix / "flask-app.conf"
        site.write_text(rewrite_site(SITE.read_text(), port, upstream_ports))
        conf = prefix / "nginx.conf"
        conf.write_text(nginx_main_conf(prefix, site))
        args = [nginx, "-p", f"{prefix}/", "-c", str(conf), "-e", str(prefix / "error.log")]
        check = subprocess.run([*args, "-t"], capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stderr
        with running(args, clean_env(), port):
            yield port, prefix
    finally:
        shutil.rmtree(prefix, ignore_errors=True)

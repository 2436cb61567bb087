"""The shipped nginx site, run by the real nginx for tests: the two lines a test rewrites
(the listen port and the upstream port) and a main config that keeps every path nginx
writes inside a temporary folder."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support import ROOT

SITE = ROOT / "deploy" / "nginx" / "flask-app.conf"
UPSTREAM_PORT = 8000


def rewrite_site(text: str, listen_port: int, upstream_port: int) -> str:
    """The shipped site with only its listen port and upstream port changed."""
    text, listens = re.subn(
        r"^(\s*)listen 80;", rf"\g<1>listen 127.0.0.1:{listen_port};", text, flags=re.M
    )
    text, upstreams = re.subn(
        rf"^(\s*)proxy_pass http://127\.0\.0\.1:{UPSTREAM_PORT};",
        rf"\g<1>proxy_pass http://127.0.0.1:{upstream_port};",
        text,
        flags=re.M,
    )
    assert (listens, upstreams) == (1, 1), "expected one active listen 80 and one proxy_pass"
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

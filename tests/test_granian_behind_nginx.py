"""granian behind the shipped nginx site: what granian cannot judge never reaches it.

Facing clients itself, granian passes on what its WSGI environ cannot show
(tests/test_contract.py lists it: bare LF line ends, a repeated Content-Length,
trailers, a chunked body cut short read as a whole one). docs/production.md
therefore asks for a proxy in front of it that re-frames each request, as nginx
does: nginx parses the client's request itself and sends granian a new one, its
body (chunked or not) buffered and sent with one Content-Length, without
trailers. Here the whole corpus goes through the real nginx, and every request
granian hands the app is checked for that framing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.live import production_env, serve_app_args
from tests.malformed_corpus import VECTORS
from tests.nginx_support import nginx_in_front
from tests.raw_http import run_corpus
from tests.support import free_port, running

pytestmark = pytest.mark.slow

# Vectors granian would pass on were it facing the client (tests/test_contract.py).
UNJUDGED = {
    "cl_duplicate_same",
    "te_and_cl",
    "cl_and_te",
    "te_hidden_behind_a_bare_lf",
    "chunk_cut_short",
    "content_length_cut_short",
}


def test_behind_nginx_granian_only_ever_gets_requests_nginx_framed(tmp_path):
    app_port = free_port()
    record = tmp_path / "record"
    record.touch()
    env = production_env(
        "granian", app_port, RECORD_FILE=record, TRUSTED_PROXY_HOPS=1, WEB_CONCURRENCY=1
    )
    with (
        running(serve_app_args("tests.apps.framing:app"), env, app_port),
        nginx_in_front(app_port, "granian's condition: a re-framing proxy in front") as (port, _),
    ):
        before = len(record.read_text().splitlines())
        outcomes = run_corpus(port, lambda: _requests(record))
        framed = [json.loads(line) for line in record.read_text().splitlines()[before:]]
    assert len(outcomes) == len(VECTORS)
    assert framed, "nothing reached granian"
    assert not [r for r in framed if r["transfer_encoding"] is not None], framed
    assert {r["protocol"] for r in framed} == {"HTTP/1"}  # nginx speaks HTTP/1.0 upstream
    reached = {n for n, o in outcomes.items() if o.app_saw}
    assert not reached & UNJUDGED, reached & UNJUDGED


def _requests(record: Path) -> list[str]:
    return [json.loads(line)["request"] for line in record.read_text().splitlines()]

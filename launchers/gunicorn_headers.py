"""What a gunicorn worker does with the app's response headers, on top of gunicorn's own.

``patch_response_headers()`` is called once in each worker, after the app is loaded:

- The app's ``Connection: close`` closes the connection. gunicorn drops it (a
  hop-by-hop header) and keeps the connection: after a response to a request whose
  body the app did not read (a 413 for a huge Content-Length), it then waited for
  that body, taking the next pipelined request as part of it.
- The security headers the app adds unchanged to every response
  (``app.security.CONSTANT_HEADERS``) go through gunicorn's check once, when the
  worker starts, rather than with every response. gunicorn matches each header's
  name and value against HTTP's grammar in Python; for these five, on a request
  for /healthz, that was about 4 % of what the worker did (docs/performance.md).
  Every other header, a view's own value for one of these names included, is still
  checked each time, except an X-Request-ID of letters and digits only (as every id
  the app makes is): gunicorn's check is first seen to pass such a value unchanged.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Iterable
from types import SimpleNamespace
from typing import Any

Header = tuple[str, str]
# Every character an id of letters and digits may hold.
ALPHANUMERIC = string.ascii_letters + string.digits


def patch_response_headers() -> None:
    from gunicorn.http.wsgi import Response

    from app.security import CONSTANT_HEADERS, REQUEST_ID_HEADER

    process_headers = Response.process_headers  # each worker patches its own copy, once
    checked = kept_as_they_are(process_headers, CONSTANT_HEADERS)
    id_name = REQUEST_ID_HEADER
    if not kept_as_they_are(process_headers, [(id_name, ALPHANUMERIC)]):
        id_name = None  # a gunicorn that would change such a value checks every id

    def process(self: Any, headers: Iterable[Header]) -> None:
        for header in headers:
            if type(header) is tuple and (
                header in checked
                or (len(header) == 2 and header[0] == id_name and _alphanumeric(header[1]))
            ):
                self.headers.append(header)
                continue
            process_headers(self, (header,))  # gunicorn's check: raises on a bad one
            name, value = header
            if name.lower() == "connection" and value.strip().lower() == "close":
                self.force_close()

    Response.process_headers = process


def _alphanumeric(value: Any) -> bool:
    return type(value) is str and value.isascii() and value.isalnum()


def kept_as_they_are(process_headers: Callable, headers: Iterable[Header]) -> frozenset[Header]:
    """Those of ``headers`` that gunicorn's ``process_headers`` passes unchanged: valid,
    not hop-by-hop, no Content-Length. Any other is left to be checked each time."""
    kept = set()
    for header in headers:
        response = SimpleNamespace(headers=[], response_length=None, upgrade=False)
        try:
            process_headers(response, [header])
        except Exception:  # noqa: BLE001, S112 - gunicorn raises it again for each response
            continue
        if response.headers == [header] and response.response_length is None:
            kept.add(header)
    return frozenset(kept)

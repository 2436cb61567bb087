"""JSON as RFC 8259 defines it, for request bodies and responses alike.

Python's json module reads and writes NaN, Infinity and -Infinity (and reads
1e999 as infinity), none of which is JSON: a body with one is refused (400), and
a response never contains one. Nesting is limited to MAX_DEPTH levels: deeper,
Python's parser or encoder runs out of recursion (a RecursionError, which would
be a 500), and a depth the parser just survives could still fail the encoder
when the body is sent back. Flask's ``get_json`` answers every ValueError raised
here with a 400.
"""

from __future__ import annotations

import json
import math
from typing import Any

from flask.json.provider import DefaultJSONProvider

MAX_DEPTH = 512  # RFC 8259 section 9 lets a parser limit it; well inside the recursion limit


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is too large a number for JSON")
    return value


def _containers(s: str | bytes) -> int:
    return s.count(b"[") + s.count(b"{") if isinstance(s, bytes) else s.count("[") + s.count("{")


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` nests containers more than ``limit`` deep (no recursion)."""
    stack = [(value, 1)]
    while stack:
        value, depth = stack.pop()
        children = value.values() if isinstance(value, dict) else value
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


class StrictJSONProvider(DefaultJSONProvider):
    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        kwargs.setdefault("parse_constant", _no_constant)
        kwargs.setdefault("parse_float", _finite)
        try:
            value = json.loads(s, **kwargs)
        except RecursionError:
            raise ValueError(f"JSON nested deeper than {MAX_DEPTH} levels") from None
        # Only a body with that many brackets can nest that deep: most skip the walk.
        if _containers(s) >= MAX_DEPTH and isinstance(value, dict | list):
            if _deeper_than(value, MAX_DEPTH):
                raise ValueError(f"JSON nested deeper than {MAX_DEPTH} levels")
        return value

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        kwargs.setdefault("allow_nan", False)
        return super().dumps(obj, **kwargs)

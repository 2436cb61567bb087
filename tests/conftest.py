from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import Sandbox, make_sandbox


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    """The project, runnable by uid 65534 (see tests.support.make_sandbox).

    Made directly under /tmp: pytest's own temporary folders are 0700.
    """
    base = Path(tempfile.mkdtemp(prefix="flask-starter-sandbox-"))
    try:
        yield make_sandbox(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)

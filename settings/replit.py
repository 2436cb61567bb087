"""The one reader of ``.replit``: which port Replit routes to 80, and what a deployment runs."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPLIT_FILE = Path(__file__).resolve().parent.parent / ".replit"
DEFAULT_INTERNAL_PORT = 5000


@dataclass(frozen=True)
class ReplitFile:
    exists: bool
    error: str = ""  # why it could not be read
    ports: tuple[dict[str, Any], ...] = ()  # the [[ports]] entries
    deployment_run: Any = None  # [deployment] run, as written

    @property
    def local_port(self) -> int | None:
        """The ``localPort`` mapped to ``externalPort = 80``, when there is a valid one."""
        for entry in self.ports:
            local = entry.get("localPort")
            if entry.get("externalPort") == 80 and isinstance(local, int) and 0 < local < 65536:
                return local
        return None

    @property
    def internal_port(self) -> int:
        return self.local_port or DEFAULT_INTERNAL_PORT


def read_replit(path: Path = REPLIT_FILE) -> ReplitFile:
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        return ReplitFile(exists=False)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        return ReplitFile(exists=True, error=str(exc))
    deployment = data.get("deployment")
    return ReplitFile(
        exists=True,
        ports=tuple(e for e in data.get("ports", []) if isinstance(e, dict)),
        deployment_run=deployment.get("run") if isinstance(deployment, dict) else None,
    )

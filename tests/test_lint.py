"""ruff (pinned in requirements-dev.txt) keeps the code to pyproject.toml's rules."""

import shutil
import subprocess
import sys

import pytest

from tests.support import ROOT


def test_ruff_check():
    r = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--output-format", "concise", "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_ruff_format():
    r = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stdout + r.stderr


LINT_IMPORTS = [
    sys.executable,
    "-c",
    "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())",
]


def lint_imports(cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        LINT_IMPORTS,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin"},
    )


def test_imports_run_one_way():
    r = lint_imports(ROOT)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize(
    ("module", "line"),
    [
        ("app/views.py", "from launchers import ports"),
        ("settings/replit.py", "import app"),
        ("launchers/ports.py", "import wsgi"),
        ("bench/project.py", "import tests.support"),
    ],
)
def test_the_import_rule_fails_when_broken(tmp_path, module, line):
    for name in ("app", "launchers", "settings", "bench", "tests"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "main.py", "wsgi.py", "gunicorn_config.py"):
        shutil.copy(ROOT / name, tmp_path / name)
    with open(tmp_path / module, "a") as f:
        f.write(f"\n{line}  # noqa\n")
    r = lint_imports(tmp_path)
    assert r.returncode != 0 and "BROKEN" in r.stdout, r.stdout + r.stderr

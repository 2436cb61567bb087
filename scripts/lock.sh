#!/usr/bin/env bash
# Make the lock: every requirements*.txt from pyproject.toml's dependencies, each package
# pinned with its hashes, one file for Linux, macOS and Windows (markers say where a
# package applies). uv keeps every pin it may keep; ask for upgrades:
#
#   scripts/lock.sh                          after adding or changing a dependency
#   scripts/lock.sh --upgrade                every package to its newest allowed release
#   scripts/lock.sh --upgrade-package flask  one package (repeat the flag for more)
#
# Then install: .venv/bin/pip install -r requirements-dev.txt
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
uv=".venv/bin/uv"
[ -x "$uv" ] || uv="uv"
# uv has its own certificate store; where pip is told of another CA bundle, use it too.
if [ -z "${SSL_CERT_FILE:-}" ] && [ -n "${PIP_CERT:-}" ]; then export SSL_CERT_FILE="$PIP_CERT"; fi

compile() {  # output, then uv's options
    local out=$1
    shift
    "$uv" pip compile --quiet --universal --generate-hashes --python-version 3.11 \
        --no-strip-markers --custom-compile-command "scripts/lock.sh" \
        "$@" pyproject.toml -o "$out"
}

compile requirements.txt "$@"
# The others keep every package requirements.txt pins at the same version.
compile requirements-granian.txt --extra granian --constraint requirements.txt "$@"
compile bench/requirements.txt --extra bench --constraint requirements.txt "$@"
compile requirements-dev.txt --all-extras --constraint requirements.txt "$@"

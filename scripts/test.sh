#!/usr/bin/env bash
# The whole test suite from a fresh clone: installs what it needs (venv, Debian tools, Kafka
# jars, kube-apiserver, kube-controller-manager and Chaos Mesh from Go modules; all cached), then
# lint, types, import contracts and pytest.
# Extra arguments go to pytest, e.g. `scripts/test.sh -k kafka`.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n== %s\n' "$*"; }

step "install: venv, system packages, Kafka jars, kube-apiserver, controllers, Chaos Mesh"
bash scripts/bootstrap.sh
bash scripts/install-system-packages.sh
.venv/bin/python -m devstack.kafka_cli install >/dev/null
bash scripts/build-kube-apiserver.sh >/dev/null
bash scripts/build-kube-controller-manager.sh >/dev/null
bash scripts/build-chaos-mesh.sh >/dev/null

step "lint and format (ruff)"
.venv/bin/ruff check .
.venv/bin/ruff format --check .

step "types (mypy --strict)"
.venv/bin/mypy

step "import contracts"
.venv/bin/lint-imports

step "tests (pytest)"
.venv/bin/python -m pytest "$@"

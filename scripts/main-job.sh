#!/usr/bin/env bash
# The main job from a fresh clone: installs what it needs (venv, stress-ng, Kafka jars; all
# cached), then runs a full chaos scenario against the local stand-in of ByteBot with real
# faults and real verification, prints the verdict and writes a report.
# Arguments go to `starter.py demo`, e.g. `scripts/main-job.sh --duration-cap 10s`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/install-system-packages.sh
exec .venv/bin/python starter.py demo "$@"

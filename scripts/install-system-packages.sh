#!/usr/bin/env bash
# Install the Debian packages the local fault backend needs (stress-ng for CPU and memory
# stress, iproute2 for `ss`/`ip` when inspecting the fault proxy's sockets, procps for `ps`),
# and chromium, the real browser the browser tests drive headless (never a downloaded build).
# Idempotent and quiet: does nothing when every tool is already there; runs `apt-get update`
# only when a package cannot be found in the current lists.
set -euo pipefail

declare -A TOOL_OF=([stress-ng]=stress-ng [iproute2]=ip [procps]=ps [util-linux]=setpriv [chromium]=chromium)
missing=()
for pkg in "${!TOOL_OF[@]}"; do
  command -v "${TOOL_OF[$pkg]}" >/dev/null 2>&1 || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
  $SUDO apt-get update -qq >/dev/null
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
for pkg in "${missing[@]}"; do
  command -v "${TOOL_OF[$pkg]}" >/dev/null 2>&1 || { echo "still missing: $pkg" >&2; exit 1; }
done

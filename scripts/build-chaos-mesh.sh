#!/usr/bin/env bash
# Chaos Mesh 2.6.7 from the Go module proxy, into a cache outside the repo keyed by the module
# version and a hash of scripts/chaos-controller-manager's go.mod/go.sum and this script:
#   crds/            the module's config/crd/bases (what kube-apiserver installs)
#   proto/           pkg/chaosdaemon/pb/chaosdaemon.proto (the chaos-daemon gRPC contract) and
#                    k8s_dns_chaos's pb/dns.proto (the chaos DNS server's), for the tests' stand-ins
#   chaos-controller-manager   the real controller (CGO off; a few minutes cold), unless
#                    called with --no-controller (the CRDs and proto only: seconds)
# Nothing of Chaos Mesh is copied into the repository. The cache dir is the last stdout line.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
src="$here/chaos-controller-manager"
. "$here/lib/go-cache.sh"

module=github.com/chaos-mesh/chaos-mesh
version=$(awk -v m="$module" '$1 == m && $2 ~ /^v/ {print $2; exit}' "$src/go.mod")
[ -n "$version" ] || { echo "no $module version in $src/go.mod" >&2; exit 1; }
dir=$(cache_dir chaos-mesh "$version" "$src/go.mod" "$src/go.sum" "$0")

fetch() {
  # go.sum (committed) pins the module's hash, so the checksum database is not needed here.
  local mod dns
  mod=$(cd "$src" && "$GO" mod download -json "$module" | awk -F'"' '$2 == "Dir" {print $4}')
  dns=$(cd "$src" && "$GO" mod download -json github.com/chaos-mesh/k8s_dns_chaos |
    awk -F'"' '$2 == "Dir" {print $4}')
  [ -d "$mod/config/crd/bases" ] || { echo "no CRDs in $mod" >&2; exit 1; }
  rm -rf "$dir/crds.tmp" && mkdir -p "$dir/crds.tmp" "$dir/proto"
  cp "$mod"/config/crd/bases/*.yaml "$dir/crds.tmp/"
  cp "$mod/pkg/chaosdaemon/pb/chaosdaemon.proto" "$dns/pb/dns.proto" "$dir/proto/"
}
[ -d "$dir/crds" ] || build_once "$dir" "$dir/crds" fetch

if [ "${1:-}" != "--no-controller" ]; then
  bin="$dir/chaos-controller-manager"
  build() {
    (cd "$src" && CGO_ENABLED=0 "$GO" build -trimpath -ldflags="-s -w" -o "$bin.tmp" \
      "$module/cmd/chaos-controller-manager")
  }
  build_once "$dir" "$bin" build
fi
echo "$dir"

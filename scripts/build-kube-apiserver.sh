#!/usr/bin/env bash
# Build scripts/kube-apiserver (embedded etcd + the real kube-apiserver) into a cache outside the
# repo, keyed by the Kubernetes version and a hash of the module's sources; skipped if present.
# The binary's path is the last line on stdout. A cold build takes several minutes; Go's own
# GOCACHE/GOMODCACHE (default locations unless set) are kept, so later rebuilds are quicker.
set -euo pipefail
src="$(cd "$(dirname "$0")/kube-apiserver" && pwd)"
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}

version=$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ {print $2; exit}' "$src/go.mod")
[ -n "$version" ] || { echo "no k8s.io/kubernetes version in $src/go.mod" >&2; exit 1; }
hash=$(cat "$src/go.mod" "$src/go.sum" "$src/main.go" | sha256sum | cut -c1-12)
dir="${XDG_CACHE_HOME:-$HOME/.cache}/bytebot-chaos/kube/${version}-${hash}"
bin="$dir/kube-apiserver"

if [ ! -x "$bin" ]; then
  mkdir -p "$dir"
  exec 9>"$dir/.lock"
  flock 9  # another build of the same sources may be running; wait for it
  if [ ! -x "$bin" ]; then
    echo "building kube-apiserver $version into $dir (cold: several minutes)" >&2
    minor=${version#v1.}; minor=${minor%%.*}
    ldflags="-s -w"
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
      ldflags+=" -X $pkg.gitTreeState=clean"
    done
    start=$SECONDS
    (cd "$src" && CGO_ENABLED=0 "$GO" build -trimpath -ldflags="$ldflags" \
      -o "$bin.tmp.$$" .)
    mv -f "$bin.tmp.$$" "$bin"
    echo "built in $((SECONDS - start))s" >&2
  fi
fi
echo "$bin"

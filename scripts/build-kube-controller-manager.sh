#!/usr/bin/env bash
# Build scripts/kube-controller-manager (the real kube-controller-manager of k8s.io/kubernetes,
# the same module set as scripts/kube-apiserver) into a cache outside the repo, keyed by the
# Kubernetes version and a hash of the module's sources. The binary's path is the last stdout line.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
src="$here/kube-controller-manager"
. "$here/lib/go-cache.sh"

version=$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ {print $2; exit}' "$src/go.mod")
[ -n "$version" ] || { echo "no k8s.io/kubernetes version in $src/go.mod" >&2; exit 1; }
dir=$(cache_dir kube-controller-manager "$version" "$src/go.mod" "$src/go.sum" "$src/main.go")
bin="$dir/kube-controller-manager"
minor=${version#v1.}; minor=${minor%%.*}
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean"
done
build() {
  (cd "$src" && CGO_ENABLED=0 "$GO" build -trimpath -ldflags="$ldflags" -o "$bin.tmp" .)
}
build_once "$dir" "$bin" build
echo "$bin"

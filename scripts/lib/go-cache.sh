# Sourced by the scripts/build-*.sh that build a Go program into a cache outside the repo.
# cache_dir NAME VERSION FILE...: ~/.cache/bytebot-chaos/NAME/VERSION-<hash of FILE...>, made.
# build_once DIR BIN CMD...: run CMD (which writes "$BIN.tmp") unless BIN exists, under a lock,
# so two builds of the same sources (two test runs) wait for each other instead of racing.
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
export GOFLAGS="${GOFLAGS:-} -mod=readonly"

cache_dir() {
  local name=$1 version=$2; shift 2
  local hash
  hash=$(cat "$@" | sha256sum | cut -c1-12)
  local dir="${XDG_CACHE_HOME:-$HOME/.cache}/bytebot-chaos/$name/${version}-${hash}"
  mkdir -p "$dir"
  echo "$dir"
}

build_once() {
  local dir=$1 bin=$2; shift 2
  [ -e "$bin" ] && return 0
  exec 9>"$dir/.lock"
  flock 9
  if [ ! -e "$bin" ]; then
    local start=$SECONDS
    echo "building $(basename "$bin") into $dir (cold: minutes)" >&2
    "$@"
    mv -f "$bin.tmp" "$bin"
    echo "built $(basename "$bin") in $((SECONDS - start))s" >&2
  fi
  exec 9>&-
}

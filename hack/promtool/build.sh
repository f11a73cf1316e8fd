#!/usr/bin/env bash
# Builds promtool from the Prometheus module pinned in go.mod (github.com/prometheus/prometheus,
# whose v0.3XX.Y tags are Prometheus 3.XX.Y), once per machine, the way
# hack/controlplane/build.sh builds the control plane: cached outside the repo, keyed by the pinned
# version and a hash of the module files, so only a new machine (or a version bump) pays for it.
# Prints the directory holding the binary. Another version:
#   cd hack/promtool && go get github.com/prometheus/prometheus/cmd/promtool@v0.3XX.Y
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

prometheus_version=$(awk '$1 == "github.com/prometheus/prometheus" {print $2}' "$here/go.mod")
modules_hash=$(cat "$here/go.mod" "$here/go.sum" "$0" | sha256sum | cut -c1-12)
cache_root=${OAUTHAPP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/oauthapp-operator}
out="$cache_root/promtool-$prometheus_version-$modules_hash"

if [[ -x "$out/promtool" ]]; then
  echo "$out"
  exit 0
fi

mkdir -p "$cache_root"
staging=$(mktemp -d "$cache_root/.build-promtool-XXXXXX")
trap 'rm -rf "$staging"' EXIT
started=$(date +%s)
echo "building promtool $prometheus_version into $out (first time on this machine: several minutes)" >&2

(cd "$here" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/prometheus/common/version.Version=$prometheus_version" \
  -o "$staging/" github.com/prometheus/prometheus/cmd/promtool) >&2

rm -rf "$out"
mv "$staging" "$out"
trap - EXIT
echo "built in $(( $(date +%s) - started ))s" >&2
echo "$out"

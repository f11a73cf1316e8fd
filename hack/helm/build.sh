#!/usr/bin/env bash
# Builds helm from the Go module pinned in go.mod, once per machine, the way
# hack/controlplane/build.sh builds the control plane: cached outside the repo, keyed by the pinned
# version and a hash of the module files, so only a new machine (or a version bump) pays for it.
# Prints the directory holding the binary.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

helm_version=$(awk '$1 == "helm.sh/helm/v3" {print $2}' "$here/go.mod")
client_go_version=$(awk '$1 == "k8s.io/client-go" {print $2}' "$here/go.mod")
modules_hash=$(cat "$here/go.mod" "$here/go.sum" "$0" | sha256sum | cut -c1-12)
cache_root=${OAUTHAPP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/oauthapp-operator}
out="$cache_root/helm-$helm_version-$modules_hash"

if [[ -x "$out/helm" ]]; then
  echo "$out"
  exit 0
fi

mkdir -p "$cache_root"
staging=$(mktemp -d "$cache_root/.build-helm-XXXXXX")
trap 'rm -rf "$staging"' EXIT
started=$(date +%s)
echo "building helm $helm_version into $out (first time on this machine: a few minutes)" >&2

# As helm's Makefile does: its version, and the Kubernetes version it assumes without a cluster
# (`helm template`, `helm lint`) taken from the client-go it is built with (v0.37 -> 1.37).
client_go_minor=${client_go_version#v0.}; client_go_minor=${client_go_minor%%.*}
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$helm_version -X helm.sh/helm/v3/internal/version.metadata= \
 -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$client_go_minor"
done
(cd "$here" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$staging/" helm.sh/helm/v3/cmd/helm) >&2

rm -rf "$out"
mv "$staging" "$out"
trap - EXIT
echo "built in $(( $(date +%s) - started ))s" >&2
echo "$out"

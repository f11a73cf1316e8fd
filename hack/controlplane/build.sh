#!/usr/bin/env bash
# Builds the test control plane (kube-apiserver, kube-controller-manager, kubectl, etcd) from the
# Go modules pinned in kube/go.mod and etcd/go.mod, once per machine. The binaries are cached
# outside the repo, keyed by the pinned versions and a hash of the module files, so only a new
# machine (or a version bump) pays for the build. Prints the directory holding the binaries.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

kube_version=$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" {print $3}' "$here/kube/go.mod")
etcd_version=$(awk '$1 == "require" && $2 == "go.etcd.io/etcd/server/v3" {print $3}' "$here/etcd/go.mod")
modules_hash=$(cat "$here"/kube/go.mod "$here"/kube/go.sum "$here"/etcd/go.mod "$here"/etcd/go.sum "$here"/etcd/main.go "$0" \
  | sha256sum | cut -c1-12)
cache_root=${OAUTHAPP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/oauthapp-operator}
out="$cache_root/controlplane-kube-$kube_version-etcd-$etcd_version-$modules_hash"

if [[ -x "$out/kube-apiserver" && -x "$out/kube-controller-manager" && -x "$out/kubectl" && -x "$out/etcd" ]]; then
  echo "$out"
  exit 0
fi

mkdir -p "$cache_root"
staging=$(mktemp -d "$cache_root/.build-XXXXXX")
trap 'rm -rf "$staging"' EXIT
started=$(date +%s)
echo "building control plane $kube_version + etcd $etcd_version into $out (first time on this machine: several minutes)" >&2

minor=${kube_version#v1.}; minor=${minor%%.*}
version_pkg=k8s.io/component-base/version
kube_ldflags="-s -w -X $version_pkg.gitVersion=$kube_version -X $version_pkg.gitMajor=1 -X $version_pkg.gitMinor=$minor \
 -X $version_pkg.gitTreeState=clean -X $version_pkg.buildDate=1970-01-01T00:00:00Z"
(cd "$here/kube" && CGO_ENABLED=0 go build -trimpath -ldflags "$kube_ldflags" -o "$staging/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kubectl) >&2
(cd "$here/etcd" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$staging/etcd" .) >&2

rm -rf "$out"
mv "$staging" "$out"
trap - EXIT
echo "built in $(( $(date +%s) - started ))s" >&2
echo "$out"

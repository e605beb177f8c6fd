#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, kube-scheduler, etcd and kwok from their published
# Go modules (no release downloads exist on our machines) and caches them under $HOME by version.
# The wrapper modules' go.mod/go.sum live beside this script so every machine resolves the same graph.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
K8S_VERSION="${K8S_VERSION:-v1.35.4}"
KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"
RECIPE_REV=1                                      # bump when flags/tags below change
OUT="${K8S_BIN_DIR:-$HOME/.cache/addonstack/k8s/${K8S_VERSION}-r${RECIPE_REV}}"
export GOTOOLCHAIN=local CGO_ENABLED=0
export GOCACHE="${GOCACHE:-$HOME/.cache/go-build}" GOMODCACHE="${GOMODCACHE:-$HOME/go/pkg/mod}"
export GOFLAGS="-buildvcs=false"

# Progress goes to stderr (one line as each component starts and when it is done, with its time); stdout
# carries only the binaries' directory, so `make k8s` and callers can keep using `| tail -1`.
step_start=$SECONDS
begin() { echo "[build] $1 ..." >&2; }
step() { echo "[build] $1 took $((SECONDS - step_start))s (total $((SECONDS))s)" >&2; step_start=$SECONDS; }

if [ -x "$OUT/kube-apiserver" ] && "$OUT/kube-apiserver" --version | grep -qx "Kubernetes ${K8S_VERSION}" \
   && [ -x "$OUT/etcd" ] && [ -x "$OUT/kwok" ] && [ -x "$OUT/kube-controller-manager" ] \
   && [ -x "$OUT/kube-scheduler" ] && [ -f "$OUT/kwok-stages/pod-ready.yaml" ]; then
  echo "k8s binaries cached in $OUT" >&2; echo "$OUT"; exit 0
fi
mkdir -p "$OUT"
echo "[build] building the control plane ${K8S_VERSION} from Go modules into $OUT (cold cache: about 5-10 min on 2 cores; about 370 MB of binaries plus 5 GB of Go build and module caches)" >&2
MINOR="${K8S_VERSION#v1.}"; STAGING="v0.${MINOR}"

# --- kube-* wrapper module: tools/k8s/kube (go.mod, go.sum committed) ------------------------
KUBE_MOD="$HERE/kube"
if [ ! -f "$KUBE_MOD/go.mod" ] || ! grep -q "k8s.io/kubernetes ${K8S_VERSION}" "$KUBE_MOD/go.mod"; then
  rm -rf "$KUBE_MOD"; mkdir -p "$KUBE_MOD"; cd "$KUBE_MOD"
  go mod init local.invalid/kubebuild >/dev/null 2>&1
  UPSTREAM_MOD="$(go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" | python3 -c 'import json,sys;print(json.load(sys.stdin)["GoMod"])')"
  UP_GO="$(awk '$1=="go"{print $2; exit}' "$UPSTREAM_MOD")"
  UP_GODEBUG="$(awk '$1=="godebug"{ $1=""; sub(/^ /,""); print; exit}' "$UPSTREAM_MOD")"
  go mod edit -go="$UP_GO"
  if [ -n "$UP_GODEBUG" ]; then go mod edit -godebug="$UP_GODEBUG"; fi
  grep -E '^\s*k8s\.io/[A-Za-z0-9._-]+ => \./staging/' "$UPSTREAM_MOD" | awk '{print $1}' | sort -u |
    while read -r m; do go mod edit -replace="${m}=${m}@${STAGING}"; done
  cat > tools.go <<'GO'
//go:build tools

// Package tools pins the Kubernetes commands this module builds.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
GO
  go get "k8s.io/kubernetes@${K8S_VERSION}" \
         "k8s.io/kubernetes/cmd/kube-apiserver@${K8S_VERSION}" \
         "k8s.io/kubernetes/cmd/kube-controller-manager@${K8S_VERSION}" \
         "k8s.io/kubernetes/cmd/kube-scheduler@${K8S_VERSION}"
  step "resolve kube module graph"
fi
cd "$KUBE_MOD"
begin "download kube modules"
go mod download
step "download kube modules"
LD=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  LD+=" -X ${pkg}.gitVersion=${K8S_VERSION} -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${MINOR%%.*}"
  LD+=" -X ${pkg}.gitTreeState=clean -X ${pkg}.buildDate=1970-01-01T00:00:00Z"
done
for c in kube-apiserver kube-controller-manager kube-scheduler; do
  begin "build $c"
  go build -trimpath -tags selinux,notest,grpcnotrace -ldflags "-s -w${LD}" -o "$OUT/$c" "k8s.io/kubernetes/cmd/$c"
  step "build $c"
done
ETCD_VER="$(go list -m -f '{{.Version}}' go.etcd.io/etcd/client/v3)"

# --- etcd wrapper module: tools/k8s/etcd (kept apart so it cannot move the apiserver's deps) -----
ETCD_MOD="$HERE/etcd"
if [ ! -f "$ETCD_MOD/go.mod" ] || ! grep -q "go.etcd.io/etcd/server/v3 ${ETCD_VER}" "$ETCD_MOD/go.mod"; then
  rm -rf "$ETCD_MOD"; mkdir -p "$ETCD_MOD"; cd "$ETCD_MOD"
  go mod init local.invalid/etcdbuild >/dev/null 2>&1
  cat > tools.go <<'GO'
//go:build tools

// Package tools pins the etcd server this module builds.
package tools

import _ "go.etcd.io/etcd/server/v3"
GO
  go get "go.etcd.io/etcd/server/v3@${ETCD_VER}"
fi
cd "$ETCD_MOD"
begin "build etcd ${ETCD_VER}"
go build -trimpath -ldflags "-s -w" -o "$OUT/etcd" go.etcd.io/etcd/server/v3
step "build etcd ${ETCD_VER}"

# --- kwok (no replace directives upstream, so go install works) -----------------------------
begin "build kwok ${KWOK_VERSION}"
GOBIN="$OUT" go install "sigs.k8s.io/kwok/cmd/kwok@${KWOK_VERSION}"
step "build kwok ${KWOK_VERSION}"
KW="$(go mod download -json "sigs.k8s.io/kwok@${KWOK_VERSION}" | python3 -c 'import json,sys;print(json.load(sys.stdin)["Dir"])')"
mkdir -p "$OUT/kwok-stages"
cp "$KW/kustomize/stage/node/fast/node-initialize.yaml" \
   "$KW/kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml" \
   "$KW/kustomize/stage/pod/fast/pod-ready.yaml" "$KW/kustomize/stage/pod/fast/pod-complete.yaml" \
   "$KW/kustomize/stage/pod/fast/pod-delete.yaml" "$OUT/kwok-stages/"
chmod -R u+w "$OUT/kwok-stages"
{ "$OUT/kube-apiserver" --version; "$OUT/etcd" --version | head -1; } >&2
echo "[build] control plane ready after $((SECONDS))s" >&2
echo "$OUT"

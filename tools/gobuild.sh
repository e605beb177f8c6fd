#!/usr/bin/env bash
# Builds one Go program of a small wrapper module under tools/ and caches it under $HOME by a hash of the
# module's go.mod, go.sum and *.go files, so a rebuild happens only when they change. Shared by the tools the
# tests call (composecheck: Compose's own loader; s3: the versitygw S3 server). Offline-safe: modules come
# from GOMODCACHE or the proxy the machine has; GOTOOLCHAIN=local never downloads a toolchain.
# Usage: gobuild.sh <module dir> <binary name> <package> <cache root> [<output dir instead of <cache root>/<hash>>].
# Prints the binary's path on the last line.
set -euo pipefail
DIR="$1" NAME="$2" PKG="$3" CACHE="$4" OVERRIDE="${5:-}"
export GOTOOLCHAIN=local CGO_ENABLED=0
export GOCACHE="${GOCACHE:-$HOME/.cache/go-build}" GOMODCACHE="${GOMODCACHE:-$HOME/go/pkg/mod}"
export GOFLAGS="-buildvcs=false -mod=readonly"
SUM="$(cat "$DIR/go.mod" "$DIR/go.sum" "$DIR"/*.go | sha256sum | cut -c1-12)"
OUT="${OVERRIDE:-$CACHE/$SUM}"
if [ ! -x "$OUT/$NAME" ]; then
  mkdir -p "$OUT"
  echo "[build] $NAME into $OUT ..." >&2
  start=$SECONDS
  (cd "$DIR" && go build -trimpath -ldflags "-s -w" -o "$OUT/$NAME.tmp" "$PKG")
  mv "$OUT/$NAME.tmp" "$OUT/$NAME"
  echo "[build] $NAME took $((SECONDS - start))s" >&2
fi
echo "$OUT/$NAME"

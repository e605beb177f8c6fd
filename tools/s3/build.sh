#!/usr/bin/env bash
# Builds versitygw (an S3-compatible gateway; its POSIX backend serves buckets from a directory) from its
# published Go module, for the backup tests' real S3 server. Cached under $HOME by a hash of the wrapper
# module, so a rebuild happens only when go.mod/go.sum change. Cold build: module download plus compile,
# printed below with its time. Prints the path of the binary on the last line.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
export GOTOOLCHAIN=local CGO_ENABLED=0
export GOCACHE="${GOCACHE:-$HOME/.cache/go-build}" GOMODCACHE="${GOMODCACHE:-$HOME/go/pkg/mod}"
export GOFLAGS="-buildvcs=false -mod=readonly"
SUM="$(cat "$HERE/go.mod" "$HERE/go.sum" "$HERE/tools.go" | sha256sum | cut -c1-12)"
OUT="${S3SERVER_DIR:-$HOME/.cache/addonstack/s3server/$SUM}"
if [ ! -x "$OUT/versitygw" ]; then
  mkdir -p "$OUT"
  echo "[build] versitygw (S3 server for the backup tests) into $OUT ..." >&2
  start=$SECONDS
  (cd "$HERE" && go build -trimpath -ldflags "-s -w" -o "$OUT/versitygw.tmp" github.com/versity/versitygw/cmd/versitygw)
  mv "$OUT/versitygw.tmp" "$OUT/versitygw"
  echo "[build] versitygw took $((SECONDS - start))s" >&2
fi
echo "$OUT/versitygw"

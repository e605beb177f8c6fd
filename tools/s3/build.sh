#!/usr/bin/env bash
# Builds versitygw (an S3-compatible gateway; its POSIX backend serves buckets from a directory) from its
# published Go module, for the backup tests' real S3 server (cached; see tools/gobuild.sh).
# Prints the path of the binary on the last line.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
exec bash "$HERE/../gobuild.sh" "$HERE" versitygw github.com/versity/versitygw/cmd/versitygw \
  "$HOME/.cache/addonstack/s3server" "${S3SERVER_DIR:-}"

#!/usr/bin/env bash
# Builds tools/composecheck (Docker Compose's own loader, compose-go, as a tiny CLI the tests call); cached,
# see tools/gobuild.sh. Prints the path of the binary on the last line.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
exec bash "$HERE/../gobuild.sh" "$HERE" composecheck . "$HOME/.cache/addonstack/composecheck" "${COMPOSECHECK_DIR:-}"

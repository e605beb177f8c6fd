#!/usr/bin/env bash
# `make demo`: a local control plane (or $KUBECONFIG's cluster with ADDONSTACK_USE_KUBECONFIG=1), the CRD,
# the operator in the background, the example stacks in namespace `demo`, and their status until Ready.
# `make demo-down` (tools/demo.sh down): stops the operator by its recorded pid, then the dev cluster.
#
# Files in $ADDONSTACK_DEV_DIR (default .dev-cluster): admin.kubeconfig, operator.pid, operator.log and the
# control plane's own state and logs.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${ADDONSTACK_BIN:-.venv/bin}"
DIR="${ADDONSTACK_DEV_DIR:-.dev-cluster}"
NS="${ADDONSTACK_DEMO_NAMESPACE:-demo}"
TIMEOUT="${ADDONSTACK_DEMO_TIMEOUT:-300}"
PIDFILE="$DIR/operator.pid"
LOG="$DIR/operator.log"
export ADDONSTACK_DEV_DIR="$DIR"

kubectl_bin() {
  local found
  found="$(ls "$HOME"/.cache/addonstack/tools/*/kubectl 2>/dev/null | tail -1 || true)"
  echo "${found:-kubectl}"
}

# The pid in operator.pid, only if that process is still our operator (pids get reused).
operator_pid() {
  [ -f "$PIDFILE" ] || return 1
  local pid
  pid="$(cat "$PIDFILE")"
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "addonstack operator run" || return 1
  echo "$pid"
}

stop_operator() {
  local pid
  if pid="$(operator_pid)"; then
    kill -TERM "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "operator (pid $pid) ignored SIGTERM for 20s; sending SIGKILL"
      kill -KILL "$pid"
    fi
    echo "operator stopped (pid $pid)"
  fi
  rm -f "$PIDFILE"
}

down() {
  stop_operator
  if [ "${ADDONSTACK_USE_KUBECONFIG:-0}" != "1" ]; then
    "$BIN/addonstack" dev-cluster down --dir "$DIR"
  fi
}

up() {
  local started kubectl
  started=$(date +%s)
  mkdir -p "$DIR"
  if [ "${ADDONSTACK_USE_KUBECONFIG:-0}" = "1" ]; then
    : "${KUBECONFIG:?set KUBECONFIG to your cluster}"
    echo "using the cluster in $KUBECONFIG"
  else
    KUBECONFIG="$("$BIN/addonstack" dev-cluster up --dir "$DIR" | tail -1)"
    export KUBECONFIG
    echo "dev cluster up; export KUBECONFIG=$KUBECONFIG"
  fi
  kubectl="$(kubectl_bin)"
  "$kubectl" apply --server-side -f crds/
  "$kubectl" wait --for condition=established --timeout=60s crd/addonstacks.addonstack.dev
  "$kubectl" create namespace "$NS" --dry-run=client -o yaml | "$kubectl" apply -f -
  # The platform's PostgreSQL admin (n8n gets its own database and role through it). On the dev cluster the
  # database Job is simulated by kwok; on a real cluster, point --database-host at your server.
  if ! "$kubectl" -n "$NS" get secret pg-admin >/dev/null 2>&1; then
    "$kubectl" -n "$NS" create secret generic pg-admin --from-literal=username=postgres \
      --from-literal=password="$(head -c 18 /dev/urandom | base64)"
  fi

  # Always a fresh operator: one left from an earlier run may be talking to a control plane that is gone.
  stop_operator
  ADDONSTACK_DRIFT_INTERVAL=15 ADDONSTACK_HEALTH_HOST=127.0.0.1 KUBECONFIG="$KUBECONFIG" nohup \
    "$BIN/addonstack" operator run --database-host "${ADDONSTACK_DEMO_DATABASE_HOST:-postgres.platform.example}" \
    --database-admin-secret pg-admin >"$LOG" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  sleep 2
  if ! operator_pid >/dev/null; then
    echo "the operator exited at once; last lines of $LOG:" >&2
    tail -20 "$LOG" >&2
    exit 1
  fi
  echo "operator running (pid $(cat "$PIDFILE"), log $LOG)"

  for f in examples/*.yaml; do "$kubectl" apply -n "$NS" -f "$f"; done
  if ! "$BIN/addonstack" status -n "$NS" --watch --timeout "$TIMEOUT"; then
    echo
    echo "not Ready after ${TIMEOUT}s. Stacks:" >&2
    "$kubectl" get addonstacks -n "$NS" -o wide >&2 || true
    echo "last lines of $LOG:" >&2
    tail -20 "$LOG" >&2
    echo "see docs/troubleshooting.md; stop everything with: make demo-down" >&2
    exit 1
  fi
  echo
  "$kubectl" get addonstacks -n "$NS"
  echo "demo Ready in $(( $(date +%s) - started ))s."
  echo "Try: export KUBECONFIG=$KUBECONFIG; $BIN/addonstack status -n $NS rag"
  echo "Stop the operator and the cluster with: make demo-down"
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  *) echo "usage: tools/demo.sh [up|down]" >&2; exit 2 ;;
esac

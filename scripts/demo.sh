#!/usr/bin/env bash
# The orchestratord demo, from nothing to a running cluster:
#   installs what is missing, builds (Release), starts a private PostgreSQL
#   in a directory under /tmp (unless DATABASE_URL is set), migrates it (with the NOTIFY
#   trigger), appends sample events (a backlog, then a steady trickle) and runs
#   a small cluster of two orchestratord workers with the sample plugins: the
#   first starts alone, the second joins a few seconds later and takes half of
#   the slices over. Runs until Ctrl-C, or for --duration N seconds. The
#   projections catch up (lag falls to 0), then follow live.
#
#   ./scripts/demo.sh [--duration N]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
duration=""
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=${2:?--duration needs a number of seconds}; shift 2 ;;
    --duration=*) duration=${1#--duration=}; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "demo.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done
if [ -n "$duration" ] && ! [[ "$duration" =~ ^[0-9]+$ ]]; then
  echo "demo.sh: --duration wants whole seconds, got '$duration'" >&2
  exit 2
fi

"$root/scripts/install-deps.sh"
echo "demo: building (Release)"
BUILD_DIR="$root/build-release" "$root/scripts/build.sh" Release >/dev/null
bin="$root/build-release/bin/orchestratord"
plugins="$root/build-release/sample-plugins"

demo="$root/.demo"
mkdir -p "$demo"
chmod 755 "$demo"
pg_started=""
pg_dir=""
workers=()
generator_pid=""
stop_workers() {
  local status=0 pid
  for pid in "${workers[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${workers[@]}"; do wait "$pid" || status=$?; done
  workers=()
  return "$status"
}
cleanup() {
  if [ -n "$generator_pid" ]; then kill "$generator_pid" 2>/dev/null || true; wait "$generator_pid" 2>/dev/null || true; fi
  stop_workers 2>/dev/null || true
  if [ -n "$pg_started" ]; then
    echo "demo: stopping the private PostgreSQL"
    "$root/scripts/pg-private.sh" stop "$pg_dir"
    rm -rf "$pg_dir"
  fi
}
trap cleanup EXIT
trap 'echo; echo "demo: got Ctrl-C, stopping"; exit 0' INT TERM

if [ -z "${DATABASE_URL:-}" ]; then
  # Under /tmp, not in the checkout: run as root, PostgreSQL runs as the
  # postgres user, who cannot enter a checkout in /root (mode 0700).
  pg_dir=$(mktemp -d /tmp/orchestratord-demo-pg.XXXXXX)
  chmod 755 "$pg_dir"
  pg_started=1
  pg_env=$("$root/scripts/pg-private.sh" start "$pg_dir") || { echo "demo: could not start PostgreSQL" >&2; exit 1; }
  eval "$pg_env"
  export DATABASE_URL="postgresql://postgres@127.0.0.1:$PGPORT/postgres"
  echo "demo: private PostgreSQL on 127.0.0.1:$PGPORT (data in $pg_dir, removed at the end)"
else
  echo "demo: using DATABASE_URL from the environment"
fi

mkdir -p "$demo/state"
cat > "$demo/orchestratord.yaml" <<YAML
# Written by scripts/demo.sh; see config/orchestratord.yaml for every key.
# Crash breadcrumbs go to a directory the demo owns, not /var/lib.
state_directory: ${demo}/state
database:
  url: "${DATABASE_URL}"
logging:
  level: info
plugins:
  directory: ${plugins}
replica_sets:
  - name: demo
    preset: development
    batch_size: 500
    projections:
      - name: event_counter
        config: {log_every: 100}
      - name: user_directory
        config: {table: demo_users}
        on_error: {policy: dead-letter, max_attempts: 3}
YAML

echo "demo: plugins found"
"$bin" plugins list --directory "$plugins"
echo "demo: effective configuration (password masked, source of each value on the right)"
"$bin" check-config --config "$demo/orchestratord.yaml"

echo "demo: migrating (event store tables when absent, orchestratord's tables, NOTIFY trigger)"
"$bin" migrate --config "$demo/orchestratord.yaml" --with-notify-trigger

echo "demo: appending 20000 sample events to catch up on, then a steady 50 events/s"
"$root/scripts/append-events.sh" --url "$DATABASE_URL" --count 20000
"$root/scripts/append-events.sh" --url "$DATABASE_URL" --rate 50 &
generator_pid=$!

# Each worker's lines carry its name; both join the same replica set. Each
# serves /metrics and /healthz on its own port (http.listen).
start_worker() {
  ORCHESTRATORD_HTTP_LISTEN="127.0.0.1:$2" "$bin" --config "$demo/orchestratord.yaml" > >(sed -u "s/^/[$1] /") 2>&1 &
  workers+=($!)
}
echo "demo: starting worker-1 (Ctrl-C to stop); watch 'projection progress' lines: lag falls to 0, then follows live"
start_worker worker-1 9090
join_after=5
status_after=10
if [ -n "$duration" ]; then
  join_after=$(( duration / 3 ))
  status_after=$(( duration * 2 / 3 ))
fi
sleep "$join_after"
echo "demo: starting worker-2: a new generation gives it half of the slices ('acquired slices' lines)"
start_worker worker-2 9091
echo "demo: metrics of the workers: http://127.0.0.1:9090/metrics and http://127.0.0.1:9091/metrics"
sleep $(( status_after - join_after ))
echo "demo: the cluster now, as orchestratord status sees it:"
"$bin" status --config "$demo/orchestratord.yaml" || true
if [ -n "$duration" ]; then
  sleep $(( duration - status_after ))
  echo "demo: --duration reached, stopping both workers (each hands its slices over and unregisters)"
else
  echo "demo: running until Ctrl-C"
  wait "${workers[0]}" || true
fi
status=0
stop_workers || status=$?
kill "$generator_pid" 2>/dev/null || true
wait "$generator_pid" 2>/dev/null || true
generator_pid=""
if [ "$status" -eq 0 ]; then
  echo "demo: both workers stopped cleanly; orchestratord status says:"
  "$bin" status --config "$demo/orchestratord.yaml" || true
  if command -v psql >/dev/null; then
    echo "demo: the user_directory read model now holds $(psql "$DATABASE_URL" -Atqc 'SELECT count(*) FROM demo_users') users"
  fi
else
  echo "demo: a worker exited with status $status" >&2
fi
exit "$status"

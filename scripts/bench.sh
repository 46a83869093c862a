#!/usr/bin/env bash
# orchestratord benchmark: every number is measured in the same run, on the
# same throwaway PostgreSQL, so ratios are meaningful on a noisy machine.
#
#   scripts/bench.sh [--events N] [--json]
#
# Rows: raw COPY of the events (the physical read limit); catch-up of one
# worker with a no-op at-least-once projection at batch 100 and 1000 and the
# ratio to COPY; a transactional projection inserting one row per event; rows
# read from the events table by 10 projections at the head relative to 1;
# append-to-handle latency with NOTIFY at 1,000 appends/s; peak RSS. Cluster
# rows (1s heartbeat, 5s stale timeout): failover after SIGKILL, handoff after
# SIGTERM, scale-out (start to first event handled), catch-up of 2 workers vs 1
# on the same data, and statements per second of an idle worker.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
events=1000000
json=""
while [ $# -gt 0 ]; do
  case "$1" in
    --events) events=${2:?--events needs a number}; shift 2 ;;
    --json) json=1; shift ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "bench: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done
[[ "$events" =~ ^[0-9]+$ ]] && [ "$events" -ge 10000 ] || { echo "bench: --events must be a whole number >= 10000" >&2; exit 2; }

log() { [ -n "$json" ] || echo "bench: $*" >&2; }

"$root/scripts/install-deps.sh" >&2
log "building (Release)"
BUILD_DIR="$root/build-release" "$root/scripts/build.sh" Release >/dev/null
bin="$root/build-release/bin/orchestratord"

work=$(mktemp -d /tmp/orchestratord-bench.XXXXXX)
chmod 755 "$work"
daemon_pid=""
workers=()
cleanup() {
  [ -n "$daemon_pid" ] && kill -9 "$daemon_pid" 2>/dev/null || true
  for pid in "${workers[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  "$root/scripts/pg-private.sh" stop "$work/pg"
  rm -rf "$work"
}
trap cleanup EXIT
eval "$("$root/scripts/pg-private.sh" start "$work/pg")"
url="postgresql://postgres@127.0.0.1:$PGPORT/postgres"
sql() { psql "$url" -X -q -At -v ON_ERROR_STOP=1 -c "$1"; }

mkdir -m 0755 "$work/plugins"
install -m 0644 "$root/build-release/fixture-plugins/noop.so" "$root/build-release/fixture-plugins/recorder.so" "$work/plugins/"

config() {  # config NAME BATCH PROJECTIONS_YAML
  cat > "$work/$1.yaml" <<YAML
database: {url: "$url"}
logging: {level: warn}
plugins: {directory: $work/plugins}
replica_sets:
  - name: $1
    batch_size: $2
    projections:
$3
YAML
  echo "$work/$1.yaml"
}
noop_projections() {  # noop_projections COUNT
  local i
  for ((i = 0; i < $1; i++)); do echo "      - name: noop_$i"; done
}
start_daemon() {  # start_daemon CONFIG
  "$bin" --config "$1" >>"$work/daemon.log" 2>&1 &
  daemon_pid=$!
}
stop_daemon() {
  kill -TERM "$daemon_pid" 2>/dev/null || true
  wait "$daemon_pid" 2>/dev/null || true
  daemon_pid=""
}
now() { date +%s.%N; }
# Waits until a projection of a replica set has committed a checkpoint at $3 or beyond.
wait_checkpoint() {  # wait_checkpoint REPLICA_SET PROJECTION POSITION
  while [ "$(sql "SELECT coalesce(max(position), 0) >= $3 FROM orchestratord_checkpoints WHERE replica_set = '$1' AND projection = '$2'")" != "t" ]; do
    kill -0 "$daemon_pid" 2>/dev/null || { echo "bench: the daemon died; see $work/daemon.log" >&2; tail -20 "$work/daemon.log" >&2; exit 1; }
    sleep 0.05
  done
}

log "migrating and appending $events events (10,000 aggregates, ~200-byte JSON payloads)"
"$bin" migrate --config "$(config setup 100 "      - name: noop_0")" --with-notify-trigger >/dev/null
sql "INSERT INTO events (bounded_context, aggregate_type, aggregate_id, aggregate_version, event_id, event_type, payload, metadata)
     SELECT 'bench', 'Account', 'account-' || (g % 10000), g / 10000 + 1, gen_random_uuid(),
            CASE g % 3 WHEN 0 THEN 'Deposited' WHEN 1 THEN 'Withdrawn' ELSE 'Renamed' END,
            convert_to(json_build_object('account', 'account-' || (g % 10000), 'amount', g % 977,
                       'currency', 'EUR', 'note', repeat('x', 120))::text, 'UTF8'),
            '{\"source\": \"bench\"}'::jsonb
     FROM generate_series(1, $events) g"
sql "VACUUM ANALYZE events"
head=$(sql "SELECT max(global_position) FROM events")

log "raw COPY of every event"
t0=$(now)
psql "$url" -X -q -c "COPY (SELECT * FROM events ORDER BY global_position) TO STDOUT" >/dev/null
copy_s=$(echo "$(now) - $t0" | bc -l)

catchup() {  # catchup BATCH -> seconds
  local name="catchup$1"
  start_daemon "$(config "$name" "$1" "      - name: noop_0")"
  local t=$(now)
  wait_checkpoint "$name" noop_0 "$head"
  local s=$(echo "$(now) - $t" | bc -l)
  local rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$daemon_pid/status")
  stop_daemon
  echo "$s $rss_kb"
}
log "catch-up, no-op projection, batch 100"
read -r b100_s _ <<<"$(catchup 100)"
log "catch-up, no-op projection, batch 1000"
read -r b1000_s rss_kb <<<"$(catchup 1000)"
peak_rss_mb=$(echo "$rss_kb / 1024" | bc -l)

log "transactional projection, one row inserted per event"
tx_events=$(( events < 200000 ? events : 200000 ))
sql "CREATE TABLE recorded (id BIGSERIAL PRIMARY KEY, global_position BIGINT, aggregate_id TEXT, aggregate_version BIGINT,
     event_type TEXT, payload_size BIGINT, metadata TEXT, handled_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp())"
start_daemon "$(config tx 1000 "      - name: recorder
        config: {table: recorded}")"
t0=$(now)
wait_checkpoint tx recorder "$tx_events"
tx_s=$(echo "$(now) - $t0" | bc -l)
stop_daemon
tx_rate=$(echo "$tx_events / $tx_s" | bc -l)

# Rows the daemon reads from the events table while N projections follow the
# head: pg_stat counts every tuple fetched through an index or a scan.
events_read() { sql "SELECT coalesce(idx_tup_fetch, 0) + seq_tup_read FROM pg_stat_user_tables WHERE relname = 'events'"; }
# Backends flush their counters lazily (an idle one up to 10 s later): wait
# until the count stops moving.
settled_events_read() {
  local previous=-1 current tries=0
  current=$(events_read)
  while [ "$current" != "$previous" ] && [ "$tries" -lt 10 ]; do
    previous=$current
    sleep 1.5
    current=$(events_read)
    tries=$((tries + 1))
  done
  echo "$current"
}
seed_checkpoints() {  # seed_checkpoints REPLICA_SET PROJECTION POSITION: every slice starts there
  # The row of the nil writer holds positions no live worker holds (docs/cluster.md).
  sql "INSERT INTO orchestratord_progress (replica_set, projection, writer, positions)
       VALUES ('$1', '$2', '00000000-0000-0000-0000-000000000000', array_fill($3::int8, ARRAY[64]))" >/dev/null
}
at_head() {  # at_head PROJECTIONS -> rows read per appended event
  local name="head$1"
  local p now_head
  # At the head as it is now (the previous run appended): nothing to catch up.
  now_head=$(sql "SELECT max(global_position) FROM events")
  for ((p = 0; p < $1; p++)); do seed_checkpoints "$name" "noop_$p" "$now_head"; done
  # Counted from before the daemon starts to after it has exited: a backend
  # flushes its table statistics lazily, but always when it ends.
  local before=$(settled_events_read)
  start_daemon "$(config "$name" 100 "$(noop_projections "$1")")"
  sleep 1
  local appended=2000
  for ((i = 0; i < 20; i++)); do
    sql "INSERT INTO events (bounded_context, aggregate_type, aggregate_id, aggregate_version, event_id, event_type, payload)
         SELECT 'bench', 'Head', 'head-$name-' || $i || '-' || g, 1, gen_random_uuid(), 'Appended', '\\x00'
         FROM generate_series(1, $(( appended / 20 ))) g"
    sleep 0.05
  done
  local target=$(sql "SELECT max(global_position) FROM events")
  for ((p = 0; p < $1; p++)); do wait_checkpoint "$name" "noop_$p" "$target"; done
  stop_daemon
  local after=$(settled_events_read)
  echo "($after - $before) / $appended" | bc -l
}
log "rows read at the head: 1 projection"
read_1=$(at_head 1)
log "rows read at the head: 10 projections"
read_10=$(at_head 10)
head=$(sql "SELECT max(global_position) FROM events")

log "append-to-handle latency with NOTIFY at 1,000 appends/s"
sql "TRUNCATE recorded"
seed_checkpoints latency recorder "$head"
start_daemon "$(config latency 100 "      - name: recorder
        config: {table: recorded}")"
sleep 1
cat > "$work/append.sql" <<'SQL'
INSERT INTO events (bounded_context, aggregate_type, aggregate_id, aggregate_version, event_id, event_type, payload)
VALUES ('bench', 'Latency', gen_random_uuid()::text, 1, gen_random_uuid(), 'Pinged', '\x00');
SQL
/usr/lib/postgresql/15/bin/pgbench "$url" -n -f "$work/append.sql" -R 1000 -T 10 -c 4 -j 2 >/dev/null 2>&1
target=$(sql "SELECT max(global_position) FROM events")
wait_checkpoint latency recorder "$target"
stop_daemon
read -r p50 p99 samples <<<"$(sql "SELECT round((percentile_cont(0.5) WITHIN GROUP (ORDER BY ms))::numeric, 2),
       round((percentile_cont(0.99) WITHIN GROUP (ORDER BY ms))::numeric, 2), count(*)
  FROM (SELECT extract(epoch FROM r.handled_at - e.created_at) * 1000 AS ms
        FROM recorded r JOIN events e ON e.global_position = r.global_position) l" | tr '|' ' ')"

# --- cluster -----------------------------------------------------------------
cluster_config() {  # cluster_config FILE REPLICA_SET OUTPUT_FILE BATCH -> path
  cat > "$work/$1.yaml" <<YAML
database: {url: "$url"}
logging: {level: info}
plugins: {directory: $work/plugins}
replica_sets:
  - name: $2
    batch_size: $4
    heartbeat_interval: 1s
    stale_worker_timeout: 5s
    coordination_timeout: 10s
    projections:
      - name: noop_0
      - name: recorder_file
        config: {file: "$3"}
YAML
  echo "$work/$1.yaml"
}
start_worker() {  # start_worker CONFIG; sets last_pid
  "$bin" --config "$1" >>"$work/cluster.log" 2>&1 &
  last_pid=$!
  workers+=("$last_pid")
}
# Every slice owned by one of exactly N registered workers, and by its target owner.
wait_converged() {  # wait_converged REPLICA_SET WORKERS
  local deadline=$(( $(date +%s) + 60 ))
  until [ "$(sql "SELECT (SELECT count(*) FROM orchestratord_workers WHERE replica_set = '$1') = $2
                  AND (SELECT count(*) FROM orchestratord_slices s JOIN orchestratord_workers w
                       ON w.replica_set = s.replica_set AND w.id = s.owner
                       WHERE s.replica_set = '$1' AND s.owner = s.target_owner) = 64")" = t ]; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "bench: replica set $1 did not converge to $2 workers; see $work/cluster.log" >&2; exit 1; }
    sleep 0.02
  done
}
start_at_head() {  # start_at_head REPLICA_SET: both projections start at the current head
  local head_now=$(sql "SELECT max(global_position) FROM events")
  seed_checkpoints "$1" noop_0 "$head_now"
  seed_checkpoints "$1" recorder_file "$head_now"
}

log "cluster: failover after SIGKILL (1s heartbeat, 5s stale timeout)"
start_at_head failover
start_worker "$(cluster_config fo1 failover "$work/fo1.txt" 100)"; survivor=$last_pid
start_worker "$(cluster_config fo2 failover "$work/fo2.txt" 100)"; victim=$last_pid
wait_converged failover 2
t0=$(now)
kill -9 "$victim"
wait "$victim" 2>/dev/null || true  # reaped quietly (no "Killed" line in the table's output)
wait_converged failover 1
failover_s=$(echo "$(now) - $t0" | bc -l)

log "cluster: graceful handoff after SIGTERM"
start_worker "$(cluster_config fo3 failover "$work/fo3.txt" 100)"; leaving=$last_pid
wait_converged failover 2
t0=$(now)
kill -TERM "$leaving"
wait_converged failover 1
handoff_s=$(echo "$(now) - $t0" | bc -l)
wait "$leaving" 2>/dev/null || true

log "cluster: scale-out, new worker start to its first handled event (appending 200 events/s)"
/usr/lib/postgresql/15/bin/pgbench "$url" -n -f "$work/append.sql" -R 200 -T 30 -c 1 >/dev/null 2>&1 &
appender=$!
sleep 0.5
t0=$(now)
start_worker "$(cluster_config fo4 failover "$work/fo4.txt" 100)"
until [ -s "$work/fo4.txt" ]; do
  [ "$(echo "$(now) - $t0 < 30" | bc -l)" = 1 ] || { echo "bench: the new worker handled nothing; see $work/cluster.log" >&2; exit 1; }
  sleep 0.01
done
scale_out_s=$(echo "$(now) - $t0" | bc -l)
kill "$appender" 2>/dev/null || true
wait "$appender" 2>/dev/null || true
for pid in "${workers[@]}"; do kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
workers=()

# Catch-up of the whole stream by one worker, then by two (each reading only
# its own slices): done when every slice's checkpoint has reached its last event.
sql "CREATE TABLE slice_heads AS SELECT ((hashtextextended(aggregate_id, 0) % 64 + 64) % 64)::int4 AS slice,
     max(global_position) AS position FROM events GROUP BY 1" >/dev/null
caught_up() {  # caught_up REPLICA_SET
  sql "SELECT count(*) = (SELECT count(*) FROM slice_heads) FROM slice_heads h JOIN orchestratord_checkpoints c
       ON c.replica_set = '$1' AND c.projection = 'noop_0' AND c.slice = h.slice AND c.position >= h.position"
}
catchup_workers() {  # catchup_workers REPLICA_SET WORKERS -> seconds
  seed_checkpoints "$1" recorder_file "$(sql "SELECT max(global_position) FROM events")"
  local t=$(now) i
  for ((i = 0; i < $2; i++)); do start_worker "$(cluster_config "$1$i" "$1" "$work/$1$i.txt" 1000)"; done
  until [ "$(caught_up "$1")" = t ]; do sleep 0.05; done
  echo "$(now) - $t" | bc -l
  for pid in "${workers[@]}"; do kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  workers=()
}
log "cluster: catch-up of one worker vs two on the same data"
solo_s=$(catchup_workers solo 1)
duo_s=$(catchup_workers duo 2)
speedup=$(echo "$solo_s / $duo_s" | bc -l)

log "cluster: idle load of one worker (NOTIFY on, nothing appended), counted in the server log for 10 s"
start_at_head idle
start_worker "$(cluster_config idle1 idle "$work/idle1.txt" 100)"
wait_converged idle 1
sleep 2
sql "ALTER SYSTEM SET log_statement = 'all'" >/dev/null
sql "ALTER SYSTEM SET log_line_prefix = '%a|'" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
sql "SELECT 'bench idle window starts'" >/dev/null
sleep 10
sql "SELECT 'bench idle window ends'" >/dev/null
sql "ALTER SYSTEM RESET log_statement" >/dev/null
sql "ALTER SYSTEM RESET log_line_prefix" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null
idle_statements=$(sed -n '/bench idle window starts/,/bench idle window ends/p' "$work/pg/postgres.log" |
  grep -E '^orchestratord[^|]*\|LOG:  (statement|execute)' | wc -l)
idle_rate=$(echo "$idle_statements / 10" | bc -l)
for pid in "${workers[@]}"; do kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
workers=()

copy_rate=$(echo "$events / $copy_s" | bc -l)
b100_rate=$(echo "$events / $b100_s" | bc -l)
b1000_rate=$(echo "$events / $b1000_s" | bc -l)
ratio100=$(echo "$b100_rate / $copy_rate" | bc -l)
ratio1000=$(echo "$b1000_rate / $copy_rate" | bc -l)
read_ratio=$(echo "if ($read_1 > 0) $read_10 / $read_1 else 0" | bc -l)

if [ -n "$json" ]; then
  printf '{"events": %d, "copy_events_per_s": %.0f, "catchup_b100_events_per_s": %.0f, "catchup_b1000_events_per_s": %.0f, "ratio_b100": %.3f, "ratio_b1000": %.3f, "tx_projection_events_per_s": %.0f, "rows_read_ratio_10_projections": %.2f, "latency_p50_ms": %s, "latency_p99_ms": %s, "latency_samples": %s, "peak_rss_mb": %.1f, "failover_s": %.2f, "handoff_s": %.3f, "scale_out_s": %.3f, "two_worker_speedup": %.2f, "idle_statements_per_s": %.2f}\n' \
    "$events" "$copy_rate" "$b100_rate" "$b1000_rate" "$ratio100" "$ratio1000" "$tx_rate" "$read_ratio" "$p50" "$p99" "$samples" "$peak_rss_mb" \
    "$failover_s" "$handoff_s" "$scale_out_s" "$speedup" "$idle_rate"
else
  printf '\n%-58s %16s %10s\n' "measure ($events events, $(nproc) cores)" "value" "target"
  printf '%-58s %16.0f %10s\n' "raw COPY, events/s" "$copy_rate" ""
  printf '%-58s %16.0f %10s\n' "catch-up, no-op projection, batch 100, events/s" "$b100_rate" ""
  printf '%-58s %16.3f %10s\n' "  ratio to raw COPY" "$ratio100" ">= 0.70"
  printf '%-58s %16.0f %10s\n' "catch-up, no-op projection, batch 1000, events/s" "$b1000_rate" ""
  printf '%-58s %16.3f %10s\n' "  ratio to raw COPY" "$ratio1000" ">= 0.85"
  printf '%-58s %16.0f %10s\n' "transactional projection, one row per event, events/s" "$tx_rate" ""
  printf '%-58s %16.2f %10s\n' "rows read at the head, 10 projections vs 1" "$read_ratio" "<= 1.2"
  printf '%-58s %16s %10s\n' "append-to-handle latency p50 at 1,000/s, ms" "$p50" ""
  printf '%-58s %16s %10s\n' "append-to-handle latency p99 at 1,000/s, ms" "$p99" "< 25"
  printf '%-58s %16.1f %10s\n' "peak RSS at batch 1000, MB" "$peak_rss_mb" "< 64"
  printf '%-58s %16.2f %10s\n' "cluster: failover after SIGKILL, s (1s heartbeat, 5s stale)" "$failover_s" "<= 6"
  printf '%-58s %16.3f %10s\n' "cluster: handoff after SIGTERM, s" "$handoff_s" "< 1"
  printf '%-58s %16.3f %10s\n' "cluster: scale-out, start to first handled event, s" "$scale_out_s" "< 2"
  printf '%-58s %16.2f %10s\n' "cluster: catch-up speed-up, 2 workers vs 1" "$speedup" ""
  printf '%-58s %16.2f %10s\n' "cluster: idle worker, statements/s (heartbeat: 1/s)" "$idle_rate" "~1"
fi

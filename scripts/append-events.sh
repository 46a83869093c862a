#!/usr/bin/env bash
# Appends sample events to a pupsourcing events table, for the demo and for
# trying orchestratord by hand. Users register (UserRegistered), change their
# email (UserEmailChanged), and pages are viewed (PageViewed); payloads are JSON.
#
#   scripts/append-events.sh --url URL [--schema public] [--table events]
#                            [--count N]            # append N events at once, then exit
#                            [--rate N [--duration S]]  # or a steady N events/s (until killed or S seconds)
set -euo pipefail
url=${DATABASE_URL:-}
schema=public
table=events
count=""
rate=""
duration=""
while [ $# -gt 0 ]; do
  case "$1" in
    --url) url=$2; shift 2 ;;
    --schema) schema=$2; shift 2 ;;
    --table) table=$2; shift 2 ;;
    --count) count=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "append-events: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done
[ -n "$url" ] || { echo "append-events: give --url or set DATABASE_URL" >&2; exit 2; }
for value in "$count" "$rate" "$duration"; do
  if [ -n "$value" ] && ! [[ "$value" =~ ^[0-9]+$ ]]; then
    echo "append-events: counts, rates and durations are whole numbers, got '$value'" >&2
    exit 2
  fi
done
for name in "$schema" "$table"; do
  if ! [[ "$name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
    echo "append-events: '$name' is not a plain SQL identifier" >&2
    exit 2
  fi
done
events="\"$schema\".\"$table\""

# One statement per call: n events, about 40% registrations, 20% email
# changes of registered users, 40% page views. Versions continue per aggregate.
append() {
  local n=$1
  psql "$url" -v ON_ERROR_STOP=1 -q -X >/dev/null <<SQL
BEGIN;
WITH base AS (SELECT count(*) AS users FROM $events WHERE event_type = 'UserRegistered')
INSERT INTO $events (bounded_context, aggregate_type, aggregate_id, aggregate_version, event_id, event_type, payload, metadata)
SELECT 'identity', 'User', 'user-' || (base.users + g), 1, gen_random_uuid(), 'UserRegistered',
       convert_to(json_build_object('email', 'user' || (base.users + g) || '@example.com',
                                    'name', 'User ' || (base.users + g))::text, 'UTF8'),
       '{"source": "append-events"}'::jsonb
FROM base, generate_series(1, greatest(1, $n * 4 / 10)) g;

INSERT INTO $events (bounded_context, aggregate_type, aggregate_id, aggregate_version, event_id, event_type, payload, metadata)
SELECT 'identity', 'User', picked.id,
       (SELECT max(e.aggregate_version) FROM $events e
        WHERE e.bounded_context = 'identity' AND e.aggregate_type = 'User' AND e.aggregate_id = picked.id) + 1,
       gen_random_uuid(), 'UserEmailChanged',
       convert_to(json_build_object('email', picked.id || '.' || floor(random() * 1000) || '@example.org')::text, 'UTF8'),
       '{"source": "append-events"}'::jsonb
FROM (SELECT DISTINCT 'user-' || (1 + floor(random() * users))::bigint AS id
      FROM (SELECT count(*) AS users FROM $events WHERE event_type = 'UserRegistered') b,
           generate_series(1, $n * 2 / 10)) picked;

INSERT INTO $events (bounded_context, aggregate_type, aggregate_id, aggregate_version, event_id, event_type, payload, metadata)
SELECT 'web', 'PageView', gen_random_uuid()::text, 1, gen_random_uuid(), 'PageViewed',
       convert_to(json_build_object('path', '/page/' || floor(random() * 50), 'ms', floor(random() * 900))::text, 'UTF8'),
       NULL
FROM generate_series(1, $n * 4 / 10);
COMMIT;
SQL
}

if [ -n "$count" ]; then
  left=$count
  while [ "$left" -gt 0 ]; do
    chunk=$(( left > 5000 ? 5000 : left ))
    append "$chunk"
    left=$(( left - chunk ))
  done
  exit 0
fi

rate=${rate:-20}
per_tick=$(( rate / 5 > 0 ? rate / 5 : 1 ))
started=$SECONDS
while [ -z "$duration" ] || [ $(( SECONDS - started )) -lt "$duration" ]; do
  append "$per_tick"
  sleep 0.2
done

#!/usr/bin/env bash
# Installs what is missing, builds, starts a throwaway PostgreSQL on a free
# port, runs every test (ctest, all labels) and always stops the cluster.
# Extra arguments go to ctest, e.g. scripts/test.sh -L unit
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
# The Release tree the demo and the benchmark use, so CI builds exactly what they run.
build_dir=${BUILD_DIR:-$root/build-release}
BUILD_DIR="$build_dir" "$root/scripts/build.sh" Release

pg_dir=$(mktemp -d /tmp/orchestratord-test-pg.XXXXXX)
chmod 755 "$pg_dir"
cleanup() {
  "$root/scripts/pg-private.sh" stop "$pg_dir"
  rm -rf "$pg_dir"
}
trap cleanup EXIT
eval "$("$root/scripts/pg-private.sh" start "$pg_dir")"
echo "test.sh: throwaway PostgreSQL on 127.0.0.1:$PGPORT"
# The PostgreSQL-restart test restarts this cluster through scripts/pg-private.sh.
export TEST_PG_DIR="$pg_dir" TEST_PG_SCRIPT="$root/scripts/pg-private.sh"

cd "$build_dir"
ctest --output-on-failure -j2 "$@"

#!/usr/bin/env bash
# Installs what is missing, builds, starts a throwaway PostgreSQL on a free
# port, runs the tests (ctest) and always stops the cluster.
#
#   scripts/test.sh [--release | --asan | --tsan] [ctest arguments...]
#
#   (no mode)  the Release suite, then the ASan+UBSan suite: what CI runs
#   --release  Release build (build-release), every label
#   --asan     AddressSanitizer + LeakSanitizer + UndefinedBehaviorSanitizer
#              (build-asan), every label
#   --tsan     ThreadSanitizer (build-tsan), labels unit and pg only: TSan
#              is slow, and the cluster and soak labels time out under it
#
# Extra arguments go to ctest, e.g. scripts/test.sh --release -L unit
# The build trees can be moved with BUILD_DIR (Release), ASAN_BUILD_DIR and
# TSAN_BUILD_DIR.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

modes=()
while [ $# -gt 0 ]; do
  case "$1" in
    --release) modes+=(release) ;;
    --asan) modes+=(asan) ;;
    --tsan) modes+=(tsan) ;;
    *) break ;;
  esac
  shift
done
[ ${#modes[@]} -gt 0 ] || modes=(release asan)

"$root/scripts/install-deps.sh"

# The sanitizers' options, read by every sanitized process: the test
# binaries and the daemons they start (tests pass their environment on).
# A report aborts the process that made it, so a test fails (a daemon that
# aborts is not the clean exit stop_gracefully() requires), and abort rather
# than an exit status keeps it apart from the daemon's own exit codes.
# allow_user_segv_handler: the daemon's own fatal-signal handler (crash
# isolation) runs as in production instead of ASan's.
supp="$root/tests/sanitizers"
asan_env=(
  ASAN_OPTIONS="halt_on_error=1:abort_on_error=1:detect_leaks=1:disable_coredump=1:check_initialization_order=1:allow_user_segv_handler=1"
  LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
  UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1"
)
tsan_env=(
  TSAN_OPTIONS="halt_on_error=1:abort_on_error=1:disable_coredump=1:second_deadlock_stack=1:suppressions=$supp/tsan.supp"
)

# run_suite NAME BUILD_DIR BUILD_TYPE CTEST_ARGS... with the arrays cmake_args
# (configure options) and env (variables for the tests) set by the caller.
# It is called as `run_suite ... || failed+=(...)`, where set -e does not
# apply, so every step checks its own status.
run_suite() {
  local name=$1 build_dir=$2 build_type=$3
  shift 3
  echo "test.sh: === $name suite: building $build_dir ==="
  BUILD_DIR="$build_dir" "$root/scripts/build.sh" "$build_type" "${cmake_args[@]}" || return 1

  # A PostgreSQL cluster of its own per suite: nothing one suite leaves
  # behind can change what the next one sees.
  local pg_dir
  pg_dir=$(mktemp -d /tmp/orchestratord-test-pg.XXXXXX) || return 1
  chmod 755 "$pg_dir" || return 1
  (
    cleanup() {
      "$root/scripts/pg-private.sh" stop "$pg_dir"
      rm -rf "$pg_dir"
    }
    trap cleanup EXIT
    pg_env=$("$root/scripts/pg-private.sh" start "$pg_dir") || exit 1
    eval "$pg_env"
    echo "test.sh: $name suite: throwaway PostgreSQL on 127.0.0.1:$PGPORT"
    # The PostgreSQL-restart test restarts this cluster through scripts/pg-private.sh.
    export TEST_PG_DIR="$pg_dir" TEST_PG_SCRIPT="$root/scripts/pg-private.sh"
    [ ${#env[@]} -eq 0 ] || export "${env[@]}"
    cd "$build_dir" || exit 1
    ctest --output-on-failure -j2 "$@"
  )
}

# Sanitized trees are built at -O1 with line tables only (-g1): that halves
# their compile time against -O2 -g, and reports still name file and line.
sanitized_flags=(-DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG")

# Every suite runs even when an earlier one failed (a Release failure says
# nothing about what the sanitizers would find); the exit status is non-zero
# when any failed.
failed=()
for mode in "${modes[@]}"; do
  case "$mode" in
    release)
      # The Release tree the demo and the benchmark use, so CI builds exactly what they run.
      cmake_args=(-DORCHESTRATORD_SANITIZE=) env=()
      run_suite Release "${BUILD_DIR:-$root/build-release}" Release "$@" || failed+=(Release)
      ;;
    asan)
      cmake_args=(-DORCHESTRATORD_SANITIZE=address "${sanitized_flags[@]}") env=("${asan_env[@]}")
      # One test is left out: eight sanitized daemons on two cores do not
      # converge within its bound (5.2 s after all are ready); the Release
      # suite runs it.
      run_suite ASan+UBSan "${ASAN_BUILD_DIR:-$root/build-asan}" RelWithDebInfo \
        -E '^cluster:eight workers started together' "$@" || failed+=(ASan+UBSan)
      ;;
    tsan)
      cmake_args=(-DORCHESTRATORD_SANITIZE=thread "${sanitized_flags[@]}") env=("${tsan_env[@]}")
      run_suite TSan "${TSAN_BUILD_DIR:-$root/build-tsan}" RelWithDebInfo -L '^(unit|pg)$' "$@" || failed+=(TSan)
      ;;
  esac
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "test.sh: failed suites: ${failed[*]}" >&2
  exit 1
fi

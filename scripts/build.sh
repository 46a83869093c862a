#!/usr/bin/env bash
# Configures and builds orchestratord into build/ (or $BUILD_DIR).
#   scripts/build.sh [Release|RelWithDebInfo|Debug] [cmake -D options...]
# e.g. scripts/build.sh RelWithDebInfo -DORCHESTRATORD_SANITIZE=address
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_type=${1:-RelWithDebInfo}
build_dir=${BUILD_DIR:-$root/build}
cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE="$build_type" "${@:2}" >/dev/null
cmake --build "$build_dir" -j"$(nproc)"

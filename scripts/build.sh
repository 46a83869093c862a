#!/usr/bin/env bash
# Configures and builds orchestratord into build/ (or $BUILD_DIR).
#   scripts/build.sh [Release|RelWithDebInfo|Debug] [cmake -D options...]
# e.g. scripts/build.sh RelWithDebInfo -DORCHESTRATORD_SANITIZE=address
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_type=${1:-RelWithDebInfo}
build_dir=${BUILD_DIR:-$root/build}
# ccache (installed by scripts/install-deps.sh) makes rebuilding unchanged
# sources nearly free, in this checkout or in another clone on the machine:
# paths are hashed relative to the checkout root and the working directory
# is left out of the hash. The settings are part of the launcher, so a plain
# `cmake --build` of the tree later uses them too. A CMAKE_CXX_COMPILER_LAUNCHER
# in the environment wins.
launcher=()
if command -v ccache >/dev/null 2>&1 && [ -z "${CMAKE_CXX_COMPILER_LAUNCHER:-}" ]; then
  ccache="env;CCACHE_BASEDIR=$root;CCACHE_NOHASHDIR=true;ccache"
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER="$ccache" -DCMAKE_C_COMPILER_LAUNCHER="$ccache")
fi
cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE="$build_type" "${launcher[@]}" "${@:2}" >/dev/null
cmake --build "$build_dir" -j"$(nproc)"

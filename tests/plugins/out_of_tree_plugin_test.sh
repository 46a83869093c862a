#!/usr/bin/env bash
# Installs orchestratord's plugin API into a temporary prefix, builds
# plugins/template against it with find_package(orchestratord), and checks the
# daemon loads the result.
set -euo pipefail
source_dir=$1
build_dir=$2
bin=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build_dir" --prefix "$work/prefix" --component Unspecified >/dev/null
cmake -S "$source_dir/plugins/template" -B "$work/build" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/build" >/dev/null
mkdir -m 0755 "$work/plugins"
install -m 0644 "$work/build/my_projection.so" "$work/plugins/"
# The options orchestratord::plugin_api carries reach an out-of-tree build:
# only the entry function is exported, and no STB_GNU_UNIQUE symbol keeps the
# daemon from unloading the plugin.
symbols=$(readelf --dyn-syms --wide "$work/build/my_projection.so")
if awk '$5 == "UNIQUE" { found = 1; print "UNIQUE symbol: " $8 } END { exit !found }' <<<"$symbols"; then
  exit 1
fi
grep -Eq 'FUNC +GLOBAL +DEFAULT +[0-9]+ orchestratord_plugin_entry$' <<<"$symbols"
output=$("$bin" plugins list --directory "$work/plugins")
echo "$output"
grep -q "my_plugin 0.1.0 (ABI 1.0)" <<<"$output"
grep -q "projection my_projection mode=at-least-once" <<<"$output"

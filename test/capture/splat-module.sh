#!/bin/bash
# Builds test/capture/splat-module against the khil kernel of the given `khil build` options (building that
# kernel first if needed) and prints the path of khil_splat.ko, kept in the cache beside nothing of the checkout:
#   bash test/capture/splat-module.sh --arch x86_64 --debug
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
obj=$(node "$top/bin/khil.js" build "$@" --json | node -e \
  'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).buildDir))')
dir="${KHIL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/khil}/splat-module/$(basename "$(dirname "$obj")")"
src="$top/test/capture/splat-module"
if [ ! -f "$dir/khil_splat.ko" ] || [ "$src/khil_splat.c" -nt "$dir/khil_splat.ko" ]; then
  mkdir -p "$dir"
  cp "$src/Kbuild" "$src/khil_splat.c" "$dir/"
  make -s -C "$obj" M="$dir" modules >&2
fi
echo "$dir/khil_splat.ko"

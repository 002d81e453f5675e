#!/bin/bash
# Captures the real consoles behind test/fixtures/console/x86_64-debug-*.log: kernel reports that LKDTM
# has no trigger for (and one it has, KASAN's), provoked by test/capture/splat-module on khil's own x86_64 kernels: the --debug one
# (lockdep, KASAN, KFENCE), and for kmemleak one with kernel-config/kmemleak.config. One boot per report,
# since lockdep reports once per boot. Run from anywhere:
#   bash test/capture/capture-splats.sh [TRIGGER...]
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
triggers=("$@")
[ ${#triggers[@]} -gt 0 ] || triggers=(rcu-usage unlock-balance irq-inversion held-to-user atomic-sleep exp-stall kfence kasan kmemleak)

work=$(mktemp -d)
# Runs of their own: runs/latest may be another khil's by the time a capture ends.
export KHIL_RUNS="$work/runs"
trap 'rm -rf "$work"' EXIT

kernel_of() {
  if [ "$1" = kmemleak ]; then echo "--arch x86_64 --config kernel-config/kmemleak.config"; else echo "--arch x86_64 --debug"; fi
}

for t in "${triggers[@]}"; do
  read -ra flags <<<"$(kernel_of "$t")"
  ko=$(bash test/capture/splat-module.sh "${flags[@]}")
  cmd="insmod khil_splat.ko trigger=$t; sleep 3"
  # LKDTM has this one: a write past the end of a kmalloc()ed object.
  [ "$t" = kasan ] && cmd="echo SLAB_LINEAR_OVERFLOW > /sys/kernel/debug/provoke-crash/DIRECT; sleep 3"
  # kmemleak reports objects unreferenced for 5 s or more and unchanged since its previous scan: two scans.
  [ "$t" = kmemleak ] && cmd="insmod khil_splat.ko trigger=$t; sleep 6; echo scan > /sys/kernel/debug/kmemleak; echo scan > /sys/kernel/debug/kmemleak; sleep 2"
  # An expedited stall is reported after this many ms (the default waits 21 s).
  node bin/khil.js exec "${flags[@]}" --append rcupdate.rcu_exp_cpu_stall_timeout=1000 \
    --push "$ko" -- sh -c "$cmd" || true
  cp "$KHIL_RUNS/latest/console.log" "test/fixtures/console/x86_64-debug-$t.log"
  echo "captured test/fixtures/console/x86_64-debug-$t.log"
done

#!/bin/bash
# crashdeck's `report --json` against drgn, run by run in turn, CPU time
# (perf stat task-clock, every thread counted), median of N runs each:
#   - drgn running the fixtures' oracle (tools/oracle.py: summary, tasks,
#     zones, meminfo, log, one backtrace): fewer facts than the report;
#   - drgn running benches/drgn/same_facts.py: the oracle's facts plus every
#     slab cache's usage and every task's backtrace (the report's facts that
#     drgn has helpers for; still no lock graph, memory breakdown or diagnosis).
# A benchmark, run by hand (never in the tests: timings are not assertions).
#
# usage: benches/drgn/side_by_side.sh VMCORE VMLINUX [N] [CRASHDECK]
#   VMLINUX is for drgn (crashdeck reads the dump alone when it has BTF);
#   CRASHDECK defaults to target/release/crashdeck (cargo build --release).
set -eu
V=$1; VML=$2; N=${3:-11}
here=$(cd "$(dirname "$0")" && pwd)
BIN=${4:-$here/../../target/release/crashdeck}
FIX=${CRASHDECK_FIXTURES:-$here/../../../shared/fixtures}
export CRASHDECK_FIXTURES=$FIX
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
clock() { perf stat -x, -e task-clock "$@" 2>&1 >/dev/null | awk -F, '/task-clock/{print $1}'; }
for i in $(seq "$N"); do
  clock "$BIN" report --json "$V" >>"$tmp/crashdeck"
  clock drgn -q -c "$V" -s "$VML" "$FIX/tools/oracle.py" >>"$tmp/oracle"
  clock drgn -q -c "$V" -s "$VML" "$here/same_facts.py" >>"$tmp/same"
done
med() { sort -n "$1" | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
c=$(med "$tmp/crashdeck"); o=$(med "$tmp/oracle"); s=$(med "$tmp/same")
echo "crashdeck report --json: $c ms (min $(sort -n "$tmp/crashdeck" | head -1))"
echo "drgn oracle.py:          $o ms  ratio $(echo "scale=3; $c/$o" | bc)"
echo "drgn same_facts.py:      $s ms  ratio $(echo "scale=3; $c/$s" | bc)"

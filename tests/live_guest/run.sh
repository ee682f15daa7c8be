#!/bin/sh
# Runs inside the guest (tools/init's lab.scenario=run): one live snapshot by
# crashdeck and, around it in the same second, the kernel's own /proc files,
# written as a tar onto the raw disk /dev/vda for the host to compare.
cd /extra || exit 1
mkdir -p /tmp/out
# Known user memory: one process with 48 MiB touched and kept, some sleepers.
stress --vm 1 --vm-bytes 48M --vm-keep --vm-hang 0 >/dev/null 2>&1 &
for i in 1 2 3 4 5; do sleep 1000 & done
sleep 4
snap() {
  cat /proc/meminfo > "/tmp/out/meminfo.$1"
  cat /proc/zoneinfo > "/tmp/out/zoneinfo.$1"
  cat /proc/slabinfo > "/tmp/out/slabinfo.$1" 2>&1
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    # pid, RSS in KiB (VmRSS: the mm's counters; kernel threads have none: 0),
    # Rss of smaps_rollup (the page tables walked: what is mapped now), comm
    rss=$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "$d/status" 2>/dev/null)
    rollup=$(sed -n 's/^Rss:[[:space:]]*\([0-9]*\).*/\1/p' "$d/smaps_rollup" 2>/dev/null)
    comm=$(cat "$d/comm" 2>/dev/null) || continue
    echo "$p ${rss:-0} ${rollup:-0} $comm"
  done > "/tmp/out/ps.$1"
}
snap before
./crashdeck report --json --live > /tmp/out/report.json 2> /tmp/out/report.err
echo "$?" > /tmp/out/report.rc
snap after
if [ -e /extra/vmlinux ]; then
  ./crashdeck report --json --live /extra/vmlinux > /tmp/out/report-vmlinux.json 2> /tmp/out/report-vmlinux.err
  echo "$?" > /tmp/out/report-vmlinux.rc
fi
# The cost of a snapshot, for the note: 5 snapshots of one open kernel.

CRASHDECK_LIVE_SNAPSHOTS=5 ./crashdeck report --live > /tmp/out/report.txt 2> /tmp/out/cost.txt
# Refreshes recorded while memory moves: one before a 160 MiB stress, one
# while it holds its memory.
./crashdeck report --live --record /tmp/out/record.jsonl > /dev/null 2>> /tmp/out/record.err
stress --vm 1 --vm-bytes 160M --vm-keep --vm-hang 0 >/dev/null 2>&1 &
sleep 6
cat /proc/zoneinfo > /tmp/out/zoneinfo.stress
./crashdeck report --live --record /tmp/out/record.jsonl > /dev/null 2>> /tmp/out/record.err
uname -r > /tmp/out/uname
cat /proc/sys/kernel/kptr_restrict > /tmp/out/kptr_restrict
ls /tmp/out
cd /tmp/out && tar -cf /dev/vda . && sync
echo "LIVE: wrote $(ls /tmp/out | wc -l) files"

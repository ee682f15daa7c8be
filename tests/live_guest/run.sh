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
cat /proc/zoneinfo > /tmp/out/zoneinfo.prestress
./crashdeck report --live --record /tmp/out/record.jsonl > /dev/null 2>> /tmp/out/record.err
stress --vm 1 --vm-bytes 160M --vm-keep --vm-hang 0 >/dev/null 2>&1 &
sleep 6
cat /proc/zoneinfo > /tmp/out/zoneinfo.stress
./crashdeck report --live --record /tmp/out/record.jsonl > /dev/null 2>> /tmp/out/record.err
uname -r > /tmp/out/uname

# stress's parent does not take its workers down with it: the workers
# (its children, by the parent pid in /proc/PID/stat) first, then it.
kill_stress() {
  for d in /proc/[0-9]*; do
    [ "$(cut -d' ' -f4 "$d/stat" 2>/dev/null)" = "$1" ] && kill "${d#/proc/}"
  done
  kill "$1" 2>/dev/null  # gone already when its last worker was
}

# The dashboard in tmux (guest.sh puts tmux, its libraries, the terminfo of
# screen and tmux-256color and the C.UTF-8 locale under /extra), refreshing
# every second at 160x50: screens captured twice before a 128 MiB stress,
# twice while it takes and holds its memory, twice paused (space), once
# after a refresh while paused (r), and after quitting (q). /proc/zoneinfo
# beside each capture.
if [ -x /extra/bin/tmux ]; then
  mkdir -p /dev/pts
  grep -q " /dev/pts " /proc/mounts || mount -t devpts devpts /dev/pts
  export TERMINFO=/extra/terminfo LOCPATH=/extra/locale LANG=C.UTF-8 TERM=screen
  tm() { /extra/bin/tmux -u -S /tmp/tmux.sock -f /dev/null "$@"; }
  shot() {
    tm capture-pane -p -t dash > "/tmp/out/screen.$1" 2>> /tmp/out/tmux.err
    cat /proc/zoneinfo > "/tmp/out/screen-zoneinfo.$1"
  }
  tm new-session -d -s dash -x 160 -y 50 'cd /extra && ./crashdeck --live --interval 1; echo "crashdeck exited $?"; sleep 1000' 2>> /tmp/out/tmux.err
  i=0
  until tm capture-pane -p -t dash 2>/dev/null | grep -q 'refresh #'; do
    i=$((i + 1)); [ "$i" -ge 120 ] && break
    sleep 0.5
  done
  sleep 1
  shot 1-before
  sleep 3
  shot 2-before
  stress --vm 1 --vm-bytes 128M --vm-keep --vm-hang 0 >/dev/null 2>&1 &
  grower=$!
  sleep 3
  shot 3-stress
  sleep 3
  shot 4-stress
  tm send-keys -t dash Space
  sleep 2
  shot 5-paused
  sleep 3
  shot 6-paused
  tm send-keys -t dash r
  sleep 3
  shot 7-paused-r
  tm send-keys -t dash q
  sleep 2
  shot 8-quit
  tm kill-server
  kill_stress "$grower"
fi
cat /proc/sys/kernel/kptr_restrict > /tmp/out/kptr_restrict

# Soak: 300 refreshes back to back of one open kernel while the stress
# holds its memory and a loop forks short-lived tasks (they exit mid-walk).
# With /extra/soak_secs (guest.sh: CRASHDECK_LIVE_SOAK_SECS=N) instead N
# refreshes 1 s apart, as the dashboard makes them, while two more stress
# workers allocate, touch and free 64 MiB each over and over (memory moving)
# and the forking loop runs; each refresh prints its figures and crashdeck's
# VmRSS, and a loop outside reads crashdeck's VmRSS every second.
(while :; do /bin/true; done) >/dev/null 2>&1 &
forker=$!
soak_secs=$(cat /extra/soak_secs 2>/dev/null)
if [ -n "$soak_secs" ]; then
  echo "$soak_secs" > /tmp/out/soak.secs
  stress --vm 2 --vm-bytes 64M >/dev/null 2>&1 &
  mover=$!
  CRASHDECK_LIVE_SNAPSHOTS=$soak_secs CRASHDECK_LIVE_INTERVAL_MS=1000 ./crashdeck report --live > /dev/null 2> /tmp/out/soak.txt &
  soaker=$!
  # uptime (s) and crashdeck's VmRSS (kB), every second while it runs
  while kill -0 "$soaker" 2>/dev/null; do
    echo "$(cut -d' ' -f1 /proc/uptime) $(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$soaker/status" 2>/dev/null)"
    sleep 1
  done > /tmp/out/soak.rss
  wait "$soaker"
  echo "$?" > /tmp/out/soak.rc
  kill_stress "$mover"
else
  CRASHDECK_LIVE_SNAPSHOTS=300 ./crashdeck report --live > /dev/null 2> /tmp/out/soak.txt
  echo "$?" > /tmp/out/soak.rc
fi
kill "$forker"

# Sleepers until /proc lists about $1 processes.
sleepers_to() {
  n=$(ls -d /proc/[0-9]* | wc -l)
  while [ "$n" -lt "$1" ]; do sleep 100000 & n=$((n + 1)); done
  sleep 2
}
# Cost at the default interval with about N processes: 6 refreshes 2 s
# apart, each refresh from scratch (CRASHDECK_LIVE_FROM_SCRATCH=1) and the
# default (keeping what the next refresh needs not read again), twice each,
# alternating (the same boot, the host's load shared); the counts in /proc
# around them.
cost_at() {
  sleepers_to "$1"
  ls -d /proc/[0-9]* | wc -l > "/tmp/out/procs$1.before"
  for run in 1 2; do
    CRASHDECK_LIVE_FROM_SCRATCH=1 CRASHDECK_LIVE_SNAPSHOTS=6 CRASHDECK_LIVE_INTERVAL_MS=2000 ./crashdeck report --live > /dev/null 2> "/tmp/out/cost-$1-scratch-$run.txt"
    CRASHDECK_LIVE_SNAPSHOTS=6 CRASHDECK_LIVE_INTERVAL_MS=2000 ./crashdeck report --live > /dev/null 2> "/tmp/out/cost-$1-kept-$run.txt"
  done
  ls -d /proc/[0-9]* | wc -l > "/tmp/out/procs$1.after"
}
cost_at 200

# Cost at the default interval with a few thousand tasks: 3000 sleepers,
# 15 refreshes 2 s apart; the processes counted in /proc around it.
i=0
while [ "$i" -lt 3000 ]; do sleep 100000 & i=$((i + 1)); done
sleep 2
ls -d /proc/[0-9]* | wc -l > /tmp/out/procs.before
CRASHDECK_LIVE_SNAPSHOTS=15 CRASHDECK_LIVE_INTERVAL_MS=2000 ./crashdeck report --live > /dev/null 2> /tmp/out/cost-tasks.txt
echo "$?" > /tmp/out/cost-tasks.rc
ls -d /proc/[0-9]* | wc -l > /tmp/out/procs.after
# And with about 5000 processes.
cost_at 5000

# Tasks blocked across refreshes: a writer on a frozen ext2 (the results'
# disk, a filesystem for a moment; the tar overwrites it at the end) waits in
# D state in sb_start_write while three refreshes are recorded.
mkdir -p /mnt/frozen
if mke2fs -q /dev/vda > /tmp/out/blocked.log 2>&1 && mount -t ext2 /dev/vda /mnt/frozen 2>> /tmp/out/blocked.log; then
  fsfreeze --freeze /mnt/frozen 2>> /tmp/out/blocked.log
  grep ' /mnt/frozen ' /proc/mounts > /tmp/out/blocked.mounts
  (echo blocked > /mnt/frozen/f) &
  writer=$!
  sleep 1
  echo "$writer" > /tmp/out/blocked.pid
  cat "/proc/$writer/stat" > /tmp/out/blocked.stat.before
  for i in 1 2 3; do
    ./crashdeck report --live --record /tmp/out/blocked.jsonl > /dev/null 2>> /tmp/out/blocked.err
    sleep 1
  done
  cat "/proc/$writer/stat" > /tmp/out/blocked.stat.after
  fsfreeze --unfreeze /mnt/frozen
  wait "$writer"
  umount /mnt/frozen
fi

# How much slower this guest runs than its host: the same CPU-bound command
# (the test times it on the host too), for the note.
time -f '%U %S' sh -c 'dd if=/dev/zero bs=1M count=64 2>/dev/null | sha256sum >/dev/null' 2> /tmp/out/calibrate.txt

# Refusals. A user who is not root (busybox su to nobody; the binary copied
# where nobody can reach it): /proc/kcore is root's.
mkdir -p /etc
echo 'root:x:0:0:root:/:/bin/sh' > /etc/passwd
echo 'nobody:x:65534:65534:nobody:/:/bin/sh' >> /etc/passwd
echo 'root:x:0:' > /etc/group
echo 'nogroup:x:65534:' >> /etc/group
cp /extra/crashdeck /tmp/crashdeck && chmod 755 /tmp/crashdeck
su -s /bin/sh nobody -c 'id -u' > /tmp/out/nonroot.uid 2>&1
su -s /bin/sh nobody -c '/tmp/crashdeck report --live' > /dev/null 2> /tmp/out/nonroot.err
echo "$?" > /tmp/out/nonroot.rc
# Lockdown, raised to confidentiality at run time (one way: last of all).
mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
cat /sys/kernel/security/lockdown > /tmp/out/lockdown.before 2>&1
echo confidentiality > /sys/kernel/security/lockdown
cat /sys/kernel/security/lockdown > /tmp/out/lockdown.after 2>&1
./crashdeck report --live > /dev/null 2> /tmp/out/lockdown.err
echo "$?" > /tmp/out/lockdown.rc
ls /tmp/out
cd /tmp/out && tar -cf /dev/vda . && sync
echo "LIVE: wrote $(ls /tmp/out | wc -l) files"

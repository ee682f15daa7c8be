#!/usr/bin/env bash
# Boots Debian 12's 6.1.0-56-amd64 kernel (from Debian's package, no debug
# package in the guest) under QEMU with crashdeck in its initramfs, runs
# run.sh there and unpacks what it wrote into OUT/files.
# usage: guest.sh CRASHDECK_BINARY OUT [VMLINUX]
#   CRASHDECK_LIVE_CACHE: where the kernel package is kept (default: OUT/../cache)
#   CRASHDECK_TOOLS: the lab tools (default: ../shared/fixtures/tools beside the checkout)
#   CRASHDECK_LIVE_SOAK_SECS: a soak of that many refreshes 1 s apart (see run.sh)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$(realpath "$1") out=$(realpath -m "$2") vmlinux=${3:-}
kver=6.1.0-56-amd64
tools=${CRASHDECK_TOOLS:-$here/../../../shared/fixtures/tools}
cache=${CRASHDECK_LIVE_CACHE:-$out/../cache}
mkdir -p "$out" "$cache"
cache=$(realpath "$cache")
if [ ! -e "$cache/img/boot/vmlinuz-$kver" ]; then
  (cd "$cache" && apt-get download -qq "linux-image-$kver")
  mkdir -p "$cache/img"
  dpkg-deb -x "$cache"/linux-image-"$kver"_*.deb "$cache/img"
fi
extra=$(mktemp -d)
trap 'rm -rf "$extra"' EXIT
cp "$here/run.sh" "$extra/run.sh"
strip -o "$extra/crashdeck" "$bin"
[ -n "$vmlinux" ] && cp "$vmlinux" "$extra/vmlinux"
# The dashboard in tmux inside the guest: the host's tmux (its libraries
# follow through mkinitrd.sh), the terminfo entries run.sh uses and the
# C.UTF-8 locale (tmux wants a UTF-8 locale; the initramfs has none).
if tmux=$(command -v tmux); then
  mkdir -p "$extra/bin" "$extra/terminfo/s" "$extra/terminfo/t" "$extra/locale"
  cp "$tmux" "$extra/bin/tmux"
  for t in s/screen t/tmux-256color; do
    for d in /usr/share/terminfo /lib/terminfo; do
      [ -e "$d/$t" ] && { cp -L "$d/$t" "$extra/terminfo/$t"; break; }
    done
  done
  [ -d /usr/lib/locale/C.utf8 ] && cp -a /usr/lib/locale/C.utf8 "$extra/locale/"
fi
# CRASHDECK_LIVE_SOAK_SECS=N: run.sh's soak is N refreshes 1 s apart (read
# from /extra/soak_secs) instead of 300 back to back; the guest's time grows
# by N s, and by as much again for refreshes slower than 1 s.
soak=${CRASHDECK_LIVE_SOAK_SECS:-}
timeout=600
if [ -n "$soak" ]; then
  case $soak in *[!0-9]*) echo "CRASHDECK_LIVE_SOAK_SECS=$soak: not a number of seconds" >&2; exit 2 ;; esac
  echo "$soak" > "$extra/soak_secs"
  timeout=$((600 + 2 * soak))
fi
EXTRA_DIR="$extra" "$tools/mkinitrd.sh" "$cache/img" "$kver" "$cache/img/boot/vmlinuz-$kver" "$out/initrd" >/dev/null
disk="$out/disk.img"
rm -f "$disk"; truncate -s 64M "$disk"
python3 "$tools/run.py" --kernel "$cache/img/boot/vmlinuz-$kver" --initrd "$out/initrd/qemu.img" \
  --out "$out" --scenario run --capture none --mem 1024 --cpus 2 --timeout $timeout \
  --qemu-args "-drive file=$disk,if=virtio,format=raw" > "$out/run.log" 2>&1
rm -rf "$out/files"; mkdir -p "$out/files"
tar -xf "$disk" -C "$out/files"
rm -f "$disk" "$out/initrd/main.img" "$out/initrd/capture.img"
ls "$out/files"

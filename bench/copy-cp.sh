#!/usr/bin/env bash
# copy, reference commands: copies $COUTIL_BENCH_DIR/src to a new file of
# the same directory, timed around the command with `date +%s%N` (so the
# time includes starting it, about a millisecond), then removes the copy.
# Prints the same keys as copy-coutil.lua. Variant (the argument):
#   cp   `cp` (coreutils copies in the kernel, with copy_file_range)
#   dd   `dd bs=1M`: a plain read/write loop with a 1 MiB (page-aligned)
#        buffer
set -euo pipefail
variant=${1:-cp}
dir=${COUTIL_BENCH_DIR:?COUTIL_BENCH_DIR not set}
src=$dir/src
dst=$dir/dst-$variant
rm -f "$dst"
case $variant in
cp) t0=$(date +%s%N); cp "$src" "$dst"; t1=$(date +%s%N) ;;
dd) t0=$(date +%s%N); dd if="$src" of="$dst" bs=1M status=none; t1=$(date +%s%N) ;;
*) echo "copy-cp.sh: unknown variant $variant" >&2; exit 2 ;;
esac
size=$(stat -c %s "$src")
[[ $(stat -c %s "$dst") == "$size" ]] || { echo "copy-cp.sh: wrong size" >&2; exit 1; }
rm -f "$dst"
ns=$((t1 - t0))
printf 'secs %d.%09d\n' $((ns / 1000000000)) $((ns % 1000000000))
echo "bytes $size"

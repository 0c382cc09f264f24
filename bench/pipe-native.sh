#!/usr/bin/env bash
# pipe, native reference: the same 256 MiB through a shell pipeline,
# `dd if=/dev/zero bs=64k count=4096 status=none | dd of=/dev/null bs=64k
# status=none`, timed around the whole pipeline with `date +%s%N` (starting
# both processes included). Prints secs and bytes, as pipe-coutil.lua.
set -euo pipefail
t0=$(date +%s%N)
dd if=/dev/zero bs=64k count=4096 status=none | dd of=/dev/null bs=64k status=none
t1=$(date +%s%N)
ns=$((t1 - t0))
printf 'secs %d.%09d\n' $((ns / 1000000000)) $((ns % 1000000000))
echo "bytes $((4096 * 65536))"

#!/bin/sh
# Flash and static RAM of the release image, for two configurations:
#   shipped  the default build: the echo's sockets 2 KiB + 2 KiB, the line
#            handler's 1 KiB + 1 KiB
#   tcp-2k   `--features tcp-2k`: every TCP socket 2 KiB + 2 KiB, the
#            configuration of the size goal (flash <= 48 KiB, static RAM
#            <= 32 KiB); built into target/tcp-2k
#   flash = .vector_table + .text + .rodata + .data (the initial values of
#           .data are stored in flash and copied to RAM at reset)
#   RAM   = .data + .bss + .uninit; the stack gets the rest of the 64 KiB
#           (its peak is measured at run time: `stack peak` in the log of
#           tests/firmware_qemu.rs).
# Needs arm-none-eabi-size and arm-none-eabi-nm (binutils-arm-none-eabi).
set -eu
cd "$(dirname "$0")"

report() { # name, target dir, cargo flags...
  name=$1 dir=$2
  shift 2
  cargo build --release --quiet --target-dir "$dir" "$@"
  elf=$dir/thumbv7m-none-eabi/release/socketserver-firmware
  echo "== $name"
  arm-none-eabi-size -A "$elf" | awk -v name="$name" '
    $1 == ".vector_table" || $1 == ".text" || $1 == ".rodata" { flash += $2 }
    $1 == ".data" { flash += $2; ram += $2 }
    $1 == ".bss" || $1 == ".uninit" { ram += $2 }
    { if ($1 ~ /^\.(vector_table|text|rodata|data|bss|uninit)$/) printf "%-14s %7d\n", $1, $2 }
    END {
      printf "flash          %7d of 262144 bytes (%.1f%%)\n", flash, 100 * flash / 262144
      printf "static RAM     %7d of  65536 bytes (%.1f%%); %d left for the stack\n", ram, 100 * ram / 65536, 65536 - ram
      if (name == "tcp-2k") {
        printf "size goal      flash %d <= 49152: %s; static RAM %d <= 32768: %s\n",
          flash, flash <= 49152 ? "met" : "NOT met", ram, ram <= 32768 ? "met" : "NOT met"
      }
    }'
  echo "statics over 1 KiB:"
  arm-none-eabi-nm --size-sort --radix=d -C "$elf" | awk '$2 ~ /^[bBdD]$/ && $1 + 0 >= 1024'
}

report shipped target
report tcp-2k target/tcp-2k --features tcp-2k

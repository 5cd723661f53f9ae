#!/bin/sh
# Flash and static RAM of the release image.
#   flash = .vector_table + .text + .rodata + .data (the initial values of
#           .data are stored in flash and copied to RAM at reset)
#   RAM   = .data + .bss + .uninit; the stack gets the rest of the 64 KiB.
# Needs arm-none-eabi-size and arm-none-eabi-nm (binutils-arm-none-eabi).
set -eu
cd "$(dirname "$0")"
cargo build --release --quiet
elf=target/thumbv7m-none-eabi/release/socketserver-firmware
arm-none-eabi-size -A "$elf" | awk '
  $1 == ".vector_table" || $1 == ".text" || $1 == ".rodata" { flash += $2 }
  $1 == ".data" { flash += $2; ram += $2 }
  $1 == ".bss" || $1 == ".uninit" { ram += $2 }
  { if ($1 ~ /^\.(vector_table|text|rodata|data|bss|uninit)$/) printf "%-14s %7d\n", $1, $2 }
  END {
    printf "flash          %7d of 262144 bytes (%.1f%%)\n", flash, 100 * flash / 262144
    printf "static RAM     %7d of  65536 bytes (%.1f%%); %d left for the stack\n", ram, 100 * ram / 65536, 65536 - ram
  }'
echo "largest statics:"
arm-none-eabi-nm --size-sort --radix=d -C "$elf" | grep -i ' [bBdD] ' | tail -5

#!/usr/bin/env bash
# Builds the Debian 12 base image every lab image starts FROM.
# No public container registry is reachable from these machines, so `docker pull
# debian:bookworm-slim` fails; debootstrap builds the same thing from Debian's own
# packages and `docker import` turns it into an image with the familiar name, so the
# Dockerfiles stay ordinary `FROM debian:bookworm-slim` files.
set -euo pipefail

readonly image="${LAB_BASE_IMAGE:-debian:bookworm-slim}"
readonly mirror="${LAB_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if docker image inspect "$image" >/dev/null 2>&1; then
  echo "base image $image: present, reused"
  exit 0
fi
if docker pull "$image" >/dev/null 2>&1; then
  echo "base image $image: pulled"
  exit 0
fi
if ! command -v debootstrap >/dev/null 2>&1; then
  echo "base image: debootstrap is missing (run 'make setup' first)" >&2
  exit 1
fi

rootfs=$(mktemp -d /var/tmp/erplab-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
echo "base image $image: building with debootstrap (about a minute)"
debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >/dev/null
# Same trims as the official slim image: no docs or man pages, empty apt lists.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
  "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
tar -C "$rootfs" -c . | docker import --change 'CMD ["bash"]' - "$image" >/dev/null
echo "base image $image: built"

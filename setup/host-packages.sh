#!/usr/bin/env bash
# Installs the Debian packages hvlab needs, only those missing; idempotent.
# As root it runs apt-get itself; otherwise it prints the one command to run and fails.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mapfile -t wanted < <(grep -v '^\s*#' "$here/debian-packages.txt" | tr -s ' \t' '\n' | sed '/^$/d')

missing=()
for pkg in "${wanted[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done
need_arm64=0
dpkg --print-foreign-architectures | grep -qx arm64 || need_arm64=1

if [[ ${#missing[@]} -eq 0 && $need_arm64 -eq 0 ]]; then
  echo "host packages: all ${#wanted[@]} present"
  exit 0
fi
cmd="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
[[ $need_arm64 -eq 1 ]] && cmd="dpkg --add-architecture arm64 && $cmd"
if [[ $(id -u) -ne 0 ]]; then
  echo "hvlab: missing host packages; as root run: $cmd" >&2
  exit 1
fi
echo "host packages: installing ${missing[*]:-none} (arm64 architecture: $([[ $need_arm64 -eq 1 ]] && echo adding || echo present))"
[[ $need_arm64 -eq 1 ]] && dpkg --add-architecture arm64
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
if [[ ${#missing[@]} -gt 0 ]]; then
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "host packages: done"

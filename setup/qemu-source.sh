#!/usr/bin/env bash
# Fetches Debian's qemu source package (QEMU 7.2's own tests/avocado and python/qemu,
# which tests/test_upstream_avocado.py runs) into the cache, never into the repository.
# Idempotent: a deb-src entry for bookworm is added only when apt knows no qemu source,
# and the source is fetched only when the cache lacks the installed version's.
# As root it changes apt's sources itself; otherwise it prints the one command to run.
set -euo pipefail
cache=${HVLAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hvlab}
dest="$cache/qemu-source"
stamp="$dest/.hvlab-source"

# The source of the QEMU that is installed (binNMU suffixes such as +b3 are not in it).
version=$(dpkg-query -W -f='${source:Version}' qemu-system-x86 2>/dev/null || true)
if [[ -z "$version" ]]; then
  echo "hvlab: qemu-system-x86 is not installed (setup/host-packages.sh installs it)" >&2
  exit 1
fi
if [[ -f "$stamp" && "$(cat "$stamp")" == "$version" ]]; then
  echo "qemu source: $version present in $dest"
  exit 0
fi

known() { apt-cache showsrc --only-source qemu 2>/dev/null | grep -q '^Version: '; }
if ! known; then
  entry=/etc/apt/sources.list.d/hvlab-deb-src.sources
  if [[ $(id -u) -ne 0 ]]; then
    echo "hvlab: apt knows no qemu source package; as root add a 'Types: deb-src' entry" \
      "for bookworm (see setup/qemu-source.sh) and run apt-get update" >&2
    exit 1
  fi
  echo "qemu source: adding $entry (Types: deb-src, bookworm)"
  cat >"$entry" <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  apt-get update -qq
fi

# Unpack into a fresh folder, then swap it in: an interrupted run leaves no half tree.
mkdir -p "$cache"
work=$(mktemp -d "$cache/.qemu-source.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "qemu source: apt-get source qemu=$version (about 24 MB) into $dest"
if ! (cd "$work" && apt-get source -qq "qemu=$version" >/dev/null 2>&1); then
  echo "qemu source: $version is not in apt's sources; fetching the newest bookworm one"
  (cd "$work" && apt-get source -qq qemu >/dev/null)
fi
tree=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'qemu-*' | head -n1)
if [[ -z "$tree" || ! -f "$tree/tests/avocado/migration.py" ]]; then
  echo "hvlab: apt-get source qemu gave no tests/avocado/migration.py" >&2
  exit 1
fi
rm -rf "$dest"
mkdir -p "$dest"
mv "$tree" "$dest/qemu"
echo "$version" >"$stamp"
echo "qemu source: done ($dest/qemu)"

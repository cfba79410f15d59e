#!/usr/bin/env bash
# Fetch Redis's pristine source tarball from Debian's source package (this machine has
# no internet except Debian's mirror and npm). Prints the tarball's path.
# Used by CI and the README's local quick start: `-e redis_source=$(scripts/redis-source.sh)`.
set -euo pipefail
dest=${BAREMETAL_SRC_CACHE:-/var/cache/baremetal-src}
existing=$(ls "$dest"/redis_*.orig.tar.gz 2>/dev/null | sort -V | tail -n 1 || true)
if [ -n "$existing" ]; then echo "$existing"; exit 0; fi
if ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ && ! grep -qs '^deb-src' /etc/apt/sources.list; then
  # Reuse the configured Debian mirror for a deb-src entry.
  src=$(grep -rls '^Types: deb$' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1 || true)
  if [ -n "$src" ]; then
    sed -e 's/^Types: deb$/Types: deb-src/' "$src" > /etc/apt/sources.list.d/baremetal-deb-src.sources
  else
    sed -n 's/^deb /deb-src /p' /etc/apt/sources.list > /etc/apt/sources.list.d/baremetal-deb-src.list
  fi
  apt-get update -q >&2
fi
mkdir -p "$dest"
(cd "$dest" && apt-get source --download-only redis >&2)
ls "$dest"/redis_*.orig.tar.gz | sort -V | tail -n 1

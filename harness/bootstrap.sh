#!/usr/bin/env bash
# Brings a fresh Debian 12 machine to where khil runs: host packages (harness/host-packages.txt) and node
# modules. Cheap when everything is there already, so every npm script runs it first.
set -euo pipefail
cd "$(dirname "$0")/.."
# Two khil commands started together in a fresh checkout must not install node modules over each other:
# one bootstraps, the other waits for it and then finds everything in place.
exec 9<harness/bootstrap.sh
flock 9

mapfile -t wanted < <(sed -e 's/#.*//' -e 's/[[:space:]]*$//' harness/host-packages.txt | grep -v '^$' | awk '{print $1}')
native=$(dpkg --print-architecture)
# One query for all: a multi-arch package is listed once per installed architecture, as name:arch.
installed=$(dpkg-query -W -f='${binary:Package} ${db:Status-Status}\n' "${wanted[@]%%:*}" 2>/dev/null | awk '$2 == "installed" {print $1}' || true)
missing=()
for p in "${wanted[@]}"; do
  if [[ "$p" == *:* ]]; then
    grep -qx "$p" <<<"$installed" || missing+=("$p")
  else
    grep -qxE "${p//+/\\+}(:$native)?" <<<"$installed" || missing+=("$p")
  fi
done

# Every described guest architecture enabled in dpkg: khil downloads that architecture's Debian packages
# (the guest image, the libraries cross-built programs link against) with apt-get download, never installs them.
new_arch=()
for f in harness/arch/*.yaml; do
  a=$(sed -n 's/^debianArch:[[:space:]]*//p' "$f")
  [[ -z "$a" || "$a" == "$native" ]] && continue
  dpkg --print-foreign-architectures | grep -qx "$a" || new_arch+=("$a")
done
if ((${#new_arch[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "khil: guest architectures not enabled in dpkg: ${new_arch[*]}" >&2
    echo "khil: as root: $(printf 'dpkg --add-architecture %s && ' "${new_arch[@]}")apt-get update" >&2
    exit 2
  fi
  for a in "${new_arch[@]}"; do dpkg --add-architecture "$a"; done
  echo "khil: enabled the guest architectures ${new_arch[*]} in dpkg (for apt-get download)" >&2
  apt-get -o DPkg::Lock::Timeout=600 update -q >&2
fi

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "khil: missing host packages: ${missing[*]}" >&2
    echo "khil: install them as root: apt-get install ${missing[*]}" >&2
    exit 2
  fi
  echo "khil: installing host packages with apt-get:" >&2
  for p in "${missing[@]}"; do
    grep -E "^${p//+/\\+}[[:space:]]" harness/host-packages.txt | sed 's/^/khil:   /' >&2
  done
  foreign=$(printf '%s\n' "${missing[@]}" | sed -n 's/.*:\([a-z0-9]*\)$/\1/p' | sort -u)
  for a in $foreign; do
    dpkg --print-foreign-architectures | grep -qx "$a" || dpkg --add-architecture "$a"
  done
  export DEBIAN_FRONTEND=noninteractive
  # Another checkout's bootstrap (or unattended-upgrades) may hold dpkg's lock: wait for it, not fail.
  apt-get -o DPkg::Lock::Timeout=600 update -q >&2
  apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}" >&2
fi

if [[ ! -d node_modules ]] || [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "khil: installing node modules" >&2
  # Some npm versions write lock files without other platforms' optional packages (biome's CLI builds),
  # which `npm ci` then refuses: install from the lock file as far as it goes instead.
  npm ci --no-audit --no-fund >&2 2>/dev/null || npm install --no-audit --no-fund >&2
fi

# The bundle bin/khil.js prefers to the tsx loader: built when a source is newer, to a temporary name first so
# that a run starting meanwhile never imports half a file. Without it khil still runs, only slower to start.
if [[ ! dist/khil.mjs -nt package-lock.json ]] || [[ -n $(find src -newer dist/khil.mjs -print -quit) ]]; then
  tmp=dist/.khil.$$.mjs
  if node_modules/.bin/esbuild src/cli/main.ts --bundle --platform=node --format=esm --packages=external \
    --target=node20 --log-level=error --outfile="$tmp"; then
    mv -f "$tmp" dist/khil.mjs
  else
    rm -f "$tmp"
  fi
fi

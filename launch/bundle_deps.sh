#!/usr/bin/env bash
# \brief Copies the small Debian dev packages dfcl needs (yaml-cpp, CLI11, nlohmann-json, fmt, GoogleTest, Google
# Benchmark) into .deps/ (git-ignored), keeping /usr's layout, so that a machine without them and without a network
# (a lent GPU host) can build with -DCMAKE_PREFIX_PATH=$PWD/.deps. Their CMake package files use relative prefixes.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out="$root/.deps"
rm -rf "$out" && mkdir -p "$out"
pkgs=(libyaml-cpp-dev libyaml-cpp0.7 libcli11-dev nlohmann-json3-dev libfmt-dev libfmt9
      libgtest-dev libgmock-dev libbenchmark-dev libbenchmark1debian)
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || { echo "bundle_deps: $p is not installed (run launch/setup.sh --deps-only)" >&2; exit 1; }
  dpkg -L "$p" | while read -r f; do
    case "$f" in /usr/share/doc*|/usr/src*) continue ;; esac
    if [ -f "$f" ] || [ -L "$f" ]; then
      mkdir -p "$out$(dirname "${f#/usr}")"
      cp -a "$f" "$out${f#/usr}"
    fi
  done
done
du -sh "$out"

#!/usr/bin/env bash
# \brief The main job on the embedded defaults: install what is missing, build, generate the default
# synthetic population (1M users, 5 arms) and print its summary. Extra arguments go to `dfcl generate`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/launch/setup.sh"
mkdir -p "$root/out"
cd "$root/out"
"$root/build/src/cli/dfcl" generate -c "$root/configs/generate.yaml" --json summary.json "$@"
"$root/build/src/cli/dfcl" info synthetic.h5 --json info.json
echo "demo: wrote out/synthetic.h5, out/summary.json, out/info.json"

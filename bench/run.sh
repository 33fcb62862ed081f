#!/usr/bin/env bash
# Run the three benchmarks one after another (about 10 minutes); each table goes to the terminal and to
# bench/out/<name>.md. tree_speed needs bench/.venv (bigmodelvis), the others the dev environment .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/out
bench/.venv/bin/python bench/tree_speed.py | tee bench/out/tree_speed.md
.venv/bin/python bench/build_cost.py | tee bench/out/build_cost.md
.venv/bin/python bench/figure_size.py | tee bench/out/figure_size.md

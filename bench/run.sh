#!/usr/bin/env bash
# Run the five benchmarks one after another (about 20 minutes); each table goes to the terminal and to
# bench/out/<name>.md. tree_speed needs bench/.venv (bigmodelvis), the others the dev environment .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/out
bench/.venv/bin/python bench/tree_speed.py | tee bench/out/tree_speed.md
.venv/bin/python bench/build_cost.py | tee bench/out/build_cost.md
.venv/bin/python bench/figure_size.py | tee bench/out/figure_size.md
.venv/bin/python bench/print_capture.py | tee bench/out/print_capture.md
.venv/bin/python bench/parallel_build.py | tee bench/out/parallel_build.md

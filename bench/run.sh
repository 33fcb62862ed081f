#!/usr/bin/env bash
# Run the benchmarks one after another (about 27 minutes); each table goes to the terminal and to
# bench/out/<name>.md. tree_speed, forward_view and flops_view need bench/.venv (bigmodelvis, torchinfo), the others the dev
# environment .venv (figure_size and page_load also run treescope in bench/.venv, as a child process). A script
# that misses one of its targets exits with 1: the others still run, and this script then exits with 1.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/out
status=0
run() {
    local name=$1
    shift
    "$@" "bench/$name.py" | tee "bench/out/$name.md" || status=1
}
run tree_speed bench/.venv/bin/python
run build_cost .venv/bin/python
run figure_size .venv/bin/python
run print_capture .venv/bin/python
run parallel_build .venv/bin/python
run page_load .venv/bin/python
run timeout_stop .venv/bin/python
run target_preview .venv/bin/python
run edit_loop .venv/bin/python
run checkpoint_resume .venv/bin/python
run forward_view bench/.venv/bin/python
run memory_view .venv/bin/python
run flops_view bench/.venv/bin/python
run placement .venv/bin/python
exit $status

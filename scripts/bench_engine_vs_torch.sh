#!/usr/bin/env bash
# Ours and PyTorch's engine benchmark, alternating, so both see the same machine load.
#
#   scripts/bench_engine_vs_torch.sh [ROUNDS] [NET]    # default 2 rounds, NET cnn|resnet|both
#
# Builds the bench binary once, first (the build is not timed), then runs that binary for
# every round (sources edited during the run change nothing measured): ours, PyTorch,
# ours, PyTorch, … Each run prints the load average before and after its figures; ratios read
# from runs whose load average was above the number of cores are not idle figures.
# PyTorch: FACEPRINT_TORCH_PYTHON (default /work/torchenv/bin/python) with torch installed,
# run twice a round: with OpenMP's default wait policy (its threads spin between parallel
# regions: fastest on an idle machine, collapsing when other processes want the cores)
# and with OMP_WAIT_POLICY=PASSIVE (the fair comparison on a loaded machine).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-2}"
net="${2:-cnn}"
python="${FACEPRINT_TORCH_PYTHON:-/work/torchenv/bin/python}"
bench="$(cargo bench --bench engine --no-run --locked 2>&1 |
    sed -n 's|^ *Executable benches/engine.rs (\(.*\))$|\1|p' || true)"
if [ ! -x "$bench" ]; then
    echo "bench_engine_vs_torch.sh: building the engine benchmark failed" >&2
    cargo bench --bench engine --no-run --locked >&2
    exit 1
fi
for round in $(seq "$rounds"); do
    echo "== round $round: faceprint"
    FACEPRINT_BENCH_NET="$net" "$bench" --bench 2>/dev/null | grep -v '^$'
    echo "== round $round: PyTorch (default OpenMP wait policy)"
    "$python" scripts/bench_torch.py --net "$net"
    echo "== round $round: PyTorch (OMP_WAIT_POLICY=PASSIVE)"
    OMP_WAIT_POLICY=PASSIVE "$python" scripts/bench_torch.py --net "$net"
done

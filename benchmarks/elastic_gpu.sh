#!/usr/bin/env bash
# Full-size elastic supernet schedules on ImageNet-style images, on a lent GPU (issue 19;
# never needed by the tests). Each schedule trains Once-for-All's MobileNetV3 supernet at its
# paper preset (`--space ofa --preset paper`: width 1.0, resolutions 128-224, every training
# image of $IMAGENET split in the two halves) on the GPU, each run under its own timeout:
#
#   ofa       progressive shrinking (largest, kernel, depth x2, expansion x2; >= 6 epochs)
#   bignas    sandwich rule with in-place distillation
#   few-shot  one-shot parent, then K sub-supernets split from it (>= 2 epochs)
#   dna       block-wise distillation from the largest network, trained first
#             (teacher_share=$DNA_TEACHER_SHARE of the epochs), or from DNA_TEACHER (a file of
#             nasforge export --format pytorch)
#
# then `nasforge supernet search` on the $SEARCH supernet under a latency measured on this
# machine's CPU (PyTorch, one thread: latency_ms[cpu-torch] <= $LATENCY_MS), and prints the
# figures: per schedule its epochs done, wall seconds, last loss and exit status; the chosen
# sub-network with its accuracy and measured latency.
#
# The full schedules take GPU-days; a device window is minutes, so the epochs are cut to EPOCHS
# and each epoch to STEPS steps (scale both to the time you have). A run killed by its timeout
# keeps its finished epochs: the same command again resumes every schedule where it stopped.
# The sub-network search measures on the CPU (one thread per sub-network, as the supernet
# evaluator does), so its counts are small here.
#
# $IMAGENET: an image-folder tree (train/<class>/*, test/<class>/*, all images one size, e.g.
# resized to 224x224) or a .tar.gz of one; decoded once into a cache, held in memory.
#
#   IMAGENET=/data/imagenet-subset bash benchmarks/elastic_gpu.sh    # results in $OUT
#
# A CPU stand-in that only checks the commands (tiny folder, a step per epoch):
#   IMAGENET=/tmp/tiny DEVICE=cpu WIDTH=0.25 RESOLUTIONS=128 BATCH=8 STEPS=1 THREADS=1 \
#     MEASURED=2 POPULATION=4 GENERATIONS=2 TOP_K=1 VALID_IMAGES=4 RECALIBRATION=1 \
#     bash benchmarks/elastic_gpu.sh
set -uo pipefail
cd "$(dirname "$0")/.."
: "${IMAGENET:?set IMAGENET to an ImageNet-style image folder (train/ and test/ of class folders) or a .tar.gz of one}"
OUT=${OUT:-elastic_gpu}
DEVICE=${DEVICE:-cuda}
SCHEDULES=${SCHEDULES:-ofa bignas few-shot dna}
EPOCHS=${EPOCHS:-6}                # ofa needs >= 6 (one per phase), few-shot >= 2
STEPS=${STEPS:-40}                 # at most this many steps per epoch
TIMEOUT=${TIMEOUT:-100}            # seconds per schedule
BATCH=${BATCH:-}                   # default: the preset's (64)
WIDTH=${WIDTH:-}                   # default: the preset's (1.0)
RESOLUTIONS=${RESOLUTIONS:-}       # default: all of the space's (128, 132, ..., 224)
FRACTION=${FRACTION:-}             # default: the preset's (every training image)
THREADS=${THREADS:-}               # CPU threads of training (default all)
DNA_TEACHER=${DNA_TEACHER:-}
DNA_TEACHER_SHARE=${DNA_TEACHER_SHARE:-0.5}
SEARCH=${SEARCH:-ofa}              # the supernet searched
LATENCY_MS=${LATENCY_MS:-20}
MEASURED=${MEASURED:-10}           # random sub-networks measured for the predictor
POPULATION=${POPULATION:-100}
GENERATIONS=${GENERATIONS:-100}
TOP_K=${TOP_K:-2}
VALID_IMAGES=${VALID_IMAGES:-200}
RECALIBRATION=${RECALIBRATION:-2}  # batches that recompute the batch norms
SEARCH_TIMEOUT=${SEARCH_TIMEOUT:-240}

mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
settings=(--space ofa --preset paper --dataset folder --data "$IMAGENET" --device "$DEVICE"
          --epochs "$EPOCHS" --steps-per-epoch "$STEPS" --quiet --json)
[ -n "$BATCH" ] && settings+=(--batch-size "$BATCH")
[ -n "$WIDTH" ] && settings+=(--width-mult "$WIDTH")
[ -n "$RESOLUTIONS" ] && settings+=(--resolutions "$RESOLUTIONS")
[ -n "$FRACTION" ] && settings+=(--data-fraction "$FRACTION")
[ -n "$THREADS" ] && settings+=(--threads "$THREADS")

for schedule in $SCHEDULES; do
    extra=()
    if [ "$schedule" = dna ]; then
        if [ -n "$DNA_TEACHER" ]; then
            extra=(--teacher "$DNA_TEACHER")
        else
            extra=(--schedule-param "teacher_share=$DNA_TEACHER_SHARE")
        fi
    fi
    echo "== $schedule: $EPOCHS epochs of at most $STEPS steps, timeout $TIMEOUT s"
    start=$(date +%s.%N)
    timeout --signal=INT --kill-after=30 "$TIMEOUT" nasforge supernet train \
        "${settings[@]}" "${extra[@]}" --schedule "$schedule" --out "$OUT/$schedule" \
        > "$OUT/train-$schedule.json"
    status=$?
    end=$(date +%s.%N)
    python -c "print(f'{$end - $start:.1f}')" > "$OUT/train-$schedule.seconds"
    echo "$status" > "$OUT/train-$schedule.status"
    echo "   exit status $status ($(cat "$OUT/train-$schedule.seconds") s)"
done

echo "== search of the $SEARCH supernet: latency_ms[cpu-torch]<=$LATENCY_MS"
rm -f "$OUT/search.db"
start=$(date +%s.%N)
timeout --signal=INT --kill-after=30 "$SEARCH_TIMEOUT" nasforge supernet search "$OUT/$SEARCH" \
    --storage "sqlite:///$OUT/search.db" --constraint "latency_ms[cpu-torch]<=$LATENCY_MS" \
    --measured "$MEASURED" --population "$POPULATION" --generations "$GENERATIONS" \
    --top-k "$TOP_K" --valid-images "$VALID_IMAGES" --recalibration-batches "$RECALIBRATION" \
    --quiet --json > "$OUT/search.json" 2> "$OUT/search.err"
search_status=$?
end=$(date +%s.%N)
python -c "print(f'{$end - $start:.1f}')" > "$OUT/search.seconds"
echo "   exit status $search_status ($(cat "$OUT/search.seconds") s)"
[ "$search_status" -ne 0 ] && tail -5 "$OUT/search.err"

python - "$OUT" "$SCHEDULES" "$LATENCY_MS" "$search_status" <<'EOF'
import json
import sys
from pathlib import Path

out, schedules, target, search_status = Path(sys.argv[1]), sys.argv[2].split(), float(sys.argv[3]), int(sys.argv[4])
print("\n| schedule | epochs done | phases done | steps/epoch | last loss | wall s | exit |")
print("|---|---|---|---|---|---|---|")
for name in schedules:
    manifest = out / name / "manifest.json"
    status = (out / f"train-{name}.status").read_text().strip()
    seconds = (out / f"train-{name}.seconds").read_text().strip()
    if not manifest.is_file():
        print(f"| {name} | 0 | 0 | - | - | {seconds} | {status} |")
        continue
    m = json.loads(manifest.read_text())
    history, phases = m["history"], m["phases"]
    total = sum(p["epochs"] for p in phases)
    loss = f"{history[-1]['loss']:.4f}" if history else "-"
    steps = m["run"]["settings"].get("steps_per_epoch")
    print(f"| {name} | {len(history)}/{total} | {m['phases_done']}/{len(phases)} | {steps} | "
          f"{loss} | {seconds} | {status} |")
seconds = (out / "search.seconds").read_text().strip()
if search_status == 0:
    r = json.loads((out / "search.json").read_text())
    latency = r["constraints"]["latency_ms[cpu-torch]"]
    met = "yes" if latency <= target else "NO"
    print("\n| search | target ms | measured ms | met | valid_acc % | MACs M | measured | s |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {r['arch']} | {target:g} | {latency:.3f} | {met} | {r['metrics'].get('valid_acc', float('nan')):.2f} | "
          f"{r['metrics'].get('macs_M', float('nan')):.1f} | {r['measured']} | {seconds} |")
else:
    print(f"\nsearch failed (exit {search_status}, {seconds} s): see {out / 'search.err'}")
EOF

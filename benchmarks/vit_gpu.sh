#!/usr/bin/env bash
# The published ImageNet-scale super-transformer setting on a lent GPU (issue 20; never needed
# by the tests). Trains the `vit` space's super-transformer (224x224, patch 14/16, embedding
# 192-768, depth 12-16: AutoFormer's and ViTAS's dimensions) with AutoFormer's recipe (Chen et
# al., ICCV 2021, arXiv:2107.00651, Section 4.1, after DeiT): AdamW, weight decay 0.05,
# lr = 5e-4 * batch / 512, linear warm-up then cosine decay, label smoothing 0.1, one
# sub-network drawn uniformly per step (SAMPLING=sandwich for BigNAS's rule), ViTAS's private
# class tokens and attention maps unless PRIVATE=0; then AutoFormer's evolutionary search
# under AutoFormer-T's parameter budget (params_M <= $PARAMS_M, 5.7 M as AutoFormer-T and
# DeiT-Ti) on the held-out half, measured on the GPU, and prints the figures: epochs done,
# wall seconds, last loss; the chosen sub-network with its inherited accuracy, parameters and
# MACs, beside the costs of the AutoFormer-T preset.
#
# The paper trains 500 epochs of ImageNet at batch 1024 on 16 GPUs; a device window is
# minutes, so the epochs are cut to EPOCHS and each epoch to STEPS steps (scale both to the
# time you have). A run killed by its timeout keeps its finished epochs: the same command
# again resumes where it stopped, bit-exact up to the GPU's non-deterministic kernels.
#
# $IMAGENET: an image-folder tree (train/<class>/*, test/<class>/*, all images 224x224) or a
# .tar.gz of one; decoded once and held in memory (FRACTION of its training images, split in
# the training half and the held-out half), so give a subset that fits the host's memory.
#
#   IMAGENET=/data/imagenet-subset bash benchmarks/vit_gpu.sh    # results in $OUT
#
# A CPU stand-in that only checks the commands (tiny 224x224 folder, a step per epoch):
#   IMAGENET=/tmp/tiny DEVICE=cpu BATCH=4 EPOCHS=1 STEPS=1 POPULATION=4 GENERATIONS=1 \
#     PARENTS=2 MUTATIONS=1 CROSSOVERS=1 VALID_IMAGES=4 PARAMS_M=30 bash benchmarks/vit_gpu.sh
set -uo pipefail
cd "$(dirname "$0")/.."
: "${IMAGENET:?set IMAGENET to an ImageNet-style image folder (train/ and test/ of class folders) or a .tar.gz of one}"
OUT=${OUT:-vit_gpu}
DEVICE=${DEVICE:-cuda}
EPOCHS=${EPOCHS:-3}
STEPS=${STEPS:-60}              # at most this many steps per epoch
BATCH=${BATCH:-128}
WARMUP=${WARMUP:-1}             # warm-up epochs (AutoFormer: 5 of 500)
FRACTION=${FRACTION:-1.0}
SAMPLING=${SAMPLING:-uniform}
PRIVATE=${PRIVATE:-1}
SEED=${SEED:-0}
TIMEOUT=${TIMEOUT:-360}         # seconds of training
PARAMS_M=${PARAMS_M:-5.7}       # AutoFormer-T's budget
POPULATION=${POPULATION:-50}    # AutoFormer's evolution: 50, 20 generations, top 10,
GENERATIONS=${GENERATIONS:-3}   # 25 mutations, 25 crossovers (generations cut for the window)
PARENTS=${PARENTS:-10}
MUTATIONS=${MUTATIONS:-25}
CROSSOVERS=${CROSSOVERS:-25}
VALID_IMAGES=${VALID_IMAGES:-500}
SEARCH_TIMEOUT=${SEARCH_TIMEOUT:-180}

mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
export IMAGENET OUT DEVICE EPOCHS STEPS BATCH WARMUP FRACTION SAMPLING PRIVATE SEED PARAMS_M \
    POPULATION GENERATIONS PARENTS MUTATIONS CROSSOVERS VALID_IMAGES

echo "== training: $EPOCHS epochs of at most $STEPS steps of $BATCH images, timeout $TIMEOUT s"
start=$(date +%s.%N)
timeout "$TIMEOUT" python - <<'EOF'
import json, os, time
from nasforge.train.data import load_image_folder
from nasforge.transformer import ViTTrainSettings, train_super_vit

env = os.environ
settings = ViTTrainSettings(
    epochs=int(env["EPOCHS"]), steps_per_epoch=int(env["STEPS"]), batch_size=int(env["BATCH"]),
    warmup_epochs=min(int(env["WARMUP"]), int(env["EPOCHS"]) - 1),
    data_fraction=float(env["FRACTION"]), sampling=env["SAMPLING"],
    private=env["PRIVATE"] == "1", seed=int(env["SEED"]),
)
print("settings", json.dumps(settings.to_dict()), "peak lr", settings.peak_lr, flush=True)
data = load_image_folder(env["IMAGENET"])
print(f"{len(data.train)} training images of {data.num_classes} classes", flush=True)
trained = train_super_vit(
    "vit", os.path.join(env["OUT"], "supernet"), settings, data=data, device=env["DEVICE"],
    callbacks=[lambda e: print("epoch", json.dumps(e), flush=True)],
)
print("trained", trained.epochs_done, "epochs")
EOF
status=$?
end=$(date +%s.%N)
echo "training exit status $status, wall $(python -c "print(round($end - $start, 1))") s"

echo "== search: AutoFormer's evolution under params_M <= $PARAMS_M, timeout $SEARCH_TIMEOUT s"
timeout "$SEARCH_TIMEOUT" python - <<'EOF'
import json, os
from nasforge import spaces
from nasforge.evaluators.super_transformer import SuperTransformerEvaluator
from nasforge.transformer import load_super_vit, search_subvits

env = os.environ
folder = os.path.join(env["OUT"], "supernet")
trained = load_super_vit(folder)
history = trained.metadata["history"]
print(f"supernet: {trained.epochs_done} epochs done, last loss {history[-1]['loss']:.4f}, "
      f"{sum(h['seconds'] for h in history):.0f} s of training")
evaluator = SuperTransformerEvaluator(
    folder, dataset="folder", data=env["IMAGENET"], valid_images=int(env["VALID_IMAGES"]),
    device=env["DEVICE"], threads=None,
)
found = search_subvits(
    evaluator, constraints=[f"params_M<={env['PARAMS_M']}"],
    storage="sqlite:///" + os.path.abspath(os.path.join(env["OUT"], "search.db")),
    study_name="vit-autoformer-t",
    population=int(env["POPULATION"]), generations=int(env["GENERATIONS"]),
    parents=int(env["PARENTS"]), mutations=int(env["MUTATIONS"]),
    crossovers=int(env["CROSSOVERS"]), seed=int(env["SEED"]),
)
space = spaces.create("vit")
print("measured sub-networks:", len(found.study.trials))
print("chosen:", found.arch.text)
print("metrics:", json.dumps(found.metrics))
print("best per generation:", found.history)
params, macs_g, source = space.published("autoformer-t")
print(f"AutoFormer-T preset: {space.costs(space.named('autoformer-t'))} (published {params} M, "
      f"{macs_g} G; {source})")
EOF
echo "search exit status $?"

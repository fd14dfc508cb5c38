#!/usr/bin/env bash
# Hardware-aware one-shot search at the published full-size settings, on a lent GPU (issue 18
# item 4; never needed by the tests). CIFAR-10 stands in for ImageNet: images resized to
# 224x224, width 1.0, ImageNet strides, every training image split in the two search halves.
#
#   ProxylessNAS: 40 warm-up + 120 search epochs, batch 256, SGD 0.025 cosine, Adam 1e-3 on
#                 alpha every 5 steps (the authors' imagenet_arch_search.py);
#   FBNet:        10 warm-up + 80 epochs (90 in all), batch 192, SGD 0.1 cosine, Adam 0.01 on
#                 theta, temperature 5.0 x exp(-0.045) per epoch;
#   Single-Path NAS: its method's "search" preset (8 epochs in the authors' command).
#
# The latency target comes from a per-layer table measured on this machine's CPU (PyTorch,
# one thread, batch 1): the device the derived networks are meant for. Memory: the resized
# search images take about 0.6 GB per 1,000 (set FRACTION below 1 on a small host).
# Scale the run to the time you have with EPOCHS_PROXYLESS / EPOCHS_FBNET / FRACTION.
#
#   bash benchmarks/mobile_oneshot_gpu.sh            # results in mobile_oneshot_gpu_*.json
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data/cifar10/cifar10-jpeg.tar.gz}
FRACTION=${FRACTION:-1.0}
TRAIN_EPOCHS=${TRAIN_EPOCHS:-30}
THREADS=${THREADS:-8}

python benchmarks/mobile_oneshot.py --gpu --data "$DATA" --methods proxylessnas \
    --epochs "${EPOCHS_PROXYLESS:-160}" --data-fraction "$FRACTION" \
    --train-epochs "$TRAIN_EPOCHS" --threads "$THREADS" --json mobile_oneshot_gpu_proxylessnas.json
python benchmarks/mobile_oneshot.py --gpu --data "$DATA" --methods fbnet \
    --epochs "${EPOCHS_FBNET:-90}" --data-fraction "$FRACTION" \
    --train-epochs "$TRAIN_EPOCHS" --threads "$THREADS" --json mobile_oneshot_gpu_fbnet.json
if [ -f src/nasforge/oneshot/single_path_nas.py ]; then
    python benchmarks/mobile_oneshot.py --gpu --data "$DATA" --methods single-path-nas \
        --epochs "${EPOCHS_SPNAS:-8}" --data-fraction "$FRACTION" \
        --train-epochs "$TRAIN_EPOCHS" --threads "$THREADS" \
        --json mobile_oneshot_gpu_single_path_nas.json
fi

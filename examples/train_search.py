"""Search NAS-Bench-201 by training each cell for real, keep the weights, export the best.

With no argument it trains on small synthetic images (well under a minute on one core); give
the CIFAR-10 data (the python release folder, an image-folder tree, or a .tar.gz of either)
to search on it with an EcoNAS-style reduced setting instead:

    python examples/train_search.py
    python examples/train_search.py ../shared/data/cifar10/cifar10-jpeg.tar.gz
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch

import nasforge
from nasforge.export import export_trial, load, load_record
from nasforge.train import Recipe

if len(sys.argv) > 1:  # CIFAR-10: 5,000 training images at 16 px, 8 channels, 1 cell per stage
    data = {"data": sys.argv[1], "data_fraction": 0.2, "valid_size": 25_000, "eval_limit": 5_000}
    setting = {"channels": 8, "cells_per_stage": 1, "resolution": 16}
    recipe = Recipe(epochs=6, batch_size=128)  # NB201's recipe, shortened
else:
    data = {"dataset": "synthetic", "synthetic": {"n_train": 1000, "n_test": 200, "size": 16}}
    setting = {"channels": 4, "cells_per_stage": 1}
    recipe = Recipe(epochs=3, batch_size=64)

with tempfile.TemporaryDirectory() as tmp:
    storage = f"sqlite:///{Path(tmp) / 'search.db'}"
    evaluator = nasforge.evaluators.create(
        "train", **data, **setting, recipe=recipe, threads=1, checkpoint_dir=Path(tmp) / "ckpt"
    )
    study = nasforge.create_study(
        strategy="regularized-evolution",
        strategy_params={"population_size": 4, "tournament_size": 2},
        storage=storage,
        study_name="train-search",
        evaluator=evaluator,
    )
    study.optimize(evaluator, n_trials=6)
    for trial in study.trials:
        print(
            f"{trial.number}  {trial.metrics.get('valid_acc', float('nan')):6.2f}  "
            f"{trial.cost:5.1f} s  {trial.arch}"
        )

    result = export_trial(study, Path(tmp) / "best.pt")  # the trained weights of the best
    net = load(result.path)  # rebuilt from the file alone, in evaluation mode
    shape = load_record(result.path).input_shape
    with torch.no_grad():
        logits = net(torch.zeros(1, *shape))
    print(
        f"best: trial {result.trial}, valid_acc {study.best_trial.metrics['valid_acc']:.2f}; "
        f"{result.path.name} rebuilds it: logits of shape {tuple(logits.shape)}"
    )

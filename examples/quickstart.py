"""Search NAS-Bench-201 with regularized evolution, persist the study, resume it, and compare
the result with the benchmark's optimum. Runs offline in about a second.

    python examples/quickstart.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import nasforge

with tempfile.TemporaryDirectory() as tmp:
    storage = f"sqlite:///{Path(tmp) / 'quickstart.db'}"
    evaluator = nasforge.evaluators.create("tabular", benchmark="nb201", dataset="cifar10")

    study = nasforge.create_study(
        space="nb201",
        strategy="regularized-evolution",
        seed=0,
        storage=storage,
        study_name="quickstart",
    )
    study.optimize(evaluator, budget=50)  # stop half way...

    study = nasforge.load_study("quickstart", storage)  # ...and resume: same trials as one run
    study.optimize(budget=100)

    best = study.best_trial
    bench = nasforge.tabular.create("nb201")
    optimum = bench.column("cifar10", "test_acc").max()
    print(f"{len(study.trials)} trials; best by validation: {best.arch}")
    print(
        f"  valid {best.metrics['valid_acc']:.2f}  test {best.metrics['test_acc']:.2f}  "
        f"(benchmark optimum test {optimum:.2f}), params {best.metrics['params_M']:.2f} M"
    )

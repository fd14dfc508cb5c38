"""How well zero-cost proxies rank a sample of architectures, as ``nasforge proxies``
prints it: each proxy's Spearman and Kendall correlation with the benchmark's test accuracy
and, given a table of reference scores, with those scores."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from nasforge.errors import InvalidConfigError

__all__ = ["proxies_summary"]


def proxies_summary(
    *,
    space: str = "nb201",
    dataset: str = "cifar10",
    sample: int = 300,
    seed: int = 0,
    names: Sequence[str] | None = None,
    reference: Path | None = None,
    data: Path | None = None,
    batch_size: int = 64,
    device: str = "auto",
    cache_dir: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Score ``sample`` architectures of ``space`` (drawn with ``seed``, or from the
    ``reference`` table's architectures) with the proxies ``names`` (default: all that score
    any network; the transformer proxies, which need attention and MLP modules, are named
    explicitly) and correlate.

    Args:
        device: ``"auto"`` (CUDA when PyTorch sees a GPU), ``"cpu"``, ``"cuda[:N]"``.
        cache_dir: Keep computed scores in this folder.
        progress: Called as ``progress(done, total)`` over the architectures.

    Raises:
        InvalidConfigError: Fewer than 2 architectures asked for.
        UnknownNameError: An unknown space or proxy.
    """
    import numpy as np

    from nasforge import proxies, spaces, tabular
    from nasforge.proxies.scores import compute_scores, kendall, read_reference, spearman

    if sample < 2:
        raise InvalidConfigError(f"--sample must be at least 2, got {sample}.")
    the_space = spaces.create(space)
    chosen = [proxies.create(n).name for n in names] if names else _applicable(the_space)
    rng = np.random.default_rng(seed)
    ref = None
    if reference is not None:
        ref = read_reference(reference, space=space, dataset=dataset, proxies=None)
        rows = np.sort(rng.choice(len(ref), size=min(sample, len(ref)), replace=False))
        ref = ref.subset(rows)
        archs = list(ref.archs)
    else:
        seen: dict[Any, None] = {}
        for _ in range(sample * 20):
            seen.setdefault(the_space.sample(rng), None)
            if len(seen) == sample:
                break
        archs = list(seen)
    bench = next(
        (tabular.create(n) for n in tabular.names() if tabular.create(n).space == space), None
    )
    accuracy = None
    if bench is not None:
        accuracy = np.array([bench.query(a, dataset, "test_acc") for a in archs])
    if device.strip().lower() == "auto":
        from nasforge.train.trainer import select_device

        device = select_device("auto").type
    report = None
    if progress is not None:
        callback = progress

        def report(done: int, total: int) -> None:  # cached scores count as done
            callback(len(archs) - total + done, len(archs))

    start = time.perf_counter()
    table = compute_scores(
        the_space, archs, chosen, data=data, dataset=dataset, batch_size=batch_size, seed=seed,
        device=device, cache_dir=cache_dir, progress=report,
    )  # fmt: skip
    rows_out = []
    for name in table.names:
        ours = table.column(name)
        row: dict[str, Any] = {"proxy": name}
        if accuracy is not None:
            row["spearman_acc"] = spearman(ours, accuracy)
            row["kendall_acc"] = kendall(ours, accuracy)
        if ref is not None and name in ref.names:
            theirs = ref.column(name)
            if accuracy is not None:
                row["reference_spearman_acc"] = spearman(theirs, accuracy)
            row["spearman_reference"] = spearman(ours, theirs)
            row["kendall_reference"] = kendall(ours, theirs)
        rows_out.append(row)
    return {
        "space": space,
        "dataset": dataset,
        "archs": len(archs),
        "seed": seed,
        "batch": f"{batch_size} images from {data}" if data else f"{batch_size} synthetic",
        "reference": None if reference is None else str(reference),
        "seconds": time.perf_counter() - start,
        "proxies": rows_out,
    }


def _applicable(space: Any) -> list[str]:
    """The registered proxies that can score the networks of ``space`` (judged on one of
    them: the transformer proxies need attention and MLP layers, zen a global average
    pooling); proxies of any network when the space builds none."""
    import numpy as np

    from nasforge import proxies
    from nasforge.errors import UnsupportedOperationError

    try:
        model = space.build(space.sample(np.random.default_rng(0)))
    except UnsupportedOperationError:
        return [n for n in proxies.names() if not proxies.get(n).requires]
    return [n for n in proxies.names() if proxies.create(n).applies(model)]

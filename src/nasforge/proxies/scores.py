"""Tables of proxy scores: computed (and cached on disk), or read from a published table.

Computing proxies with real networks takes about a second per architecture on a CPU, so a
search over thousands of candidates needs the scores to be kept. :func:`compute_scores`
caches each score in memory and, with ``cache_dir``, on disk, one file per (space, proxy,
seed, batch and network settings); :func:`read_reference` reads a precomputed table such as
NAS-Bench-Suite-Zero's (``nb201_zero_cost_proxies.csv.gz``), so that the training-free
strategies can run on published scores. :func:`spearman` and :func:`kendall` measure how
well a score ranks architectures (through scipy when it is installed, else in NumPy).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nasforge.architecture import Architecture
from nasforge.errors import InvalidConfigError, StorageError, UnknownNameError
from nasforge.ranks import (
    kendall,
    kendall_numpy,
    rank_normalise,
    spearman,
    spearman_numpy,
)

__all__ = [
    "REFERENCE_ALIASES",
    "ProxyScores",
    "candidate_scores",
    "compute_scores",
    "kendall",
    "kendall_numpy",
    "rank_normalise",
    "read_reference",
    "spearman",
    "spearman_numpy",
]

logger = logging.getLogger(__name__)

#: Column names of NAS-Bench-Suite-Zero tables that differ from nasforge's proxy names.
REFERENCE_ALIASES: dict[str, str] = {"zc_params": "params", "zc_flops": "flops"}

_MEMORY: dict[tuple[str, ...], float] = {}


@dataclass(frozen=True, eq=False)
class ProxyScores:
    """Scores of several proxies for a list of architectures.

    Attributes:
        archs: The architectures, one per row.
        names: The proxies, one per column.
        values: Float array ``(len(archs), len(names))``.
        source: Where the scores came from.
    """

    archs: tuple[Architecture, ...]
    names: tuple[str, ...]
    values: np.ndarray
    source: str = ""
    _rows: dict[Architecture, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        values = np.asarray(self.values, dtype=np.float64)
        if values.shape != (len(self.archs), len(self.names)):
            raise InvalidConfigError(
                f"ProxyScores needs values of shape ({len(self.archs)}, {len(self.names)}), got "
                f"{values.shape}."
            )
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "_rows", {a: i for i, a in enumerate(self.archs)})

    def __len__(self) -> int:
        return len(self.archs)

    def column(self, name: str) -> np.ndarray:
        """The scores of proxy ``name`` (:class:`UnknownNameError` if it is not a column)."""
        if name not in self.names:
            raise UnknownNameError(
                f"proxy in {self.source or 'this score table'}", name, self.names
            )
        return self.values[:, self.names.index(name)]

    def row(self, arch: Architecture) -> int | None:
        """The row of ``arch``, or ``None`` if the table does not hold it."""
        return self._rows.get(arch)

    def select(self, names: Sequence[str]) -> ProxyScores:
        """The same rows with only the proxies ``names``, in that order."""
        columns = [self.column(n) for n in names]
        values = np.stack(columns, axis=1) if columns else np.zeros((len(self), 0))
        return ProxyScores(self.archs, tuple(names), values, self.source)

    def subset(self, rows: Sequence[int] | np.ndarray) -> ProxyScores:
        """The rows ``rows``, in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        return ProxyScores(
            tuple(self.archs[int(i)] for i in rows), self.names, self.values[rows], self.source
        )


# -- reference tables ------------------------------------------------------------------------------
def read_reference(
    path: str | os.PathLike[str],
    *,
    space: Any = "nb201",
    dataset: str | None = "cifar10",
    proxies: Sequence[str] | None = None,
) -> ProxyScores:
    """Read a table of proxy scores (CSV, optionally gzip-compressed).

    The table has one row per architecture (and dataset): a column ``arch`` with the
    architecture's text in ``space`` (NB201's ``|op~0|+|...|``), optionally a column
    ``dataset``, and one column per proxy named as nasforge names them, or as
    NAS-Bench-Suite-Zero does (``zc_params``, ``zc_flops``; see :data:`REFERENCE_ALIASES`).

    Args:
        path: The file, e.g. ``../shared/data/nb201/nb201_zero_cost_proxies.csv.gz``.
        space: Registry name of the space the ``arch`` texts belong to, or the space itself
            (a space built with parameters, e.g. a benchmark table's).
        dataset: Keep the rows of this dataset (matched case-insensitively); ``None`` when the
            table has no ``dataset`` column.
        proxies: The proxies to read (``None``: every column that names a registered proxy).

    Raises:
        StorageError: The file is missing or unreadable.
        InvalidConfigError: The table lacks the ``arch`` column, the ``dataset`` column, a
            requested proxy column, or rows for ``dataset`` (the message lists what it has).
    """
    from nasforge import proxies as registry
    from nasforge import spaces

    file = Path(path)
    if not file.is_file():
        raise StorageError(f"No proxy score table at {file}; pass the path of a CSV file.")
    opener: Callable[..., Any] = gzip.open if file.suffix == ".gz" else open
    try:
        with opener(file, "rt", newline="") as handle:
            reader = csv.DictReader(handle)
            header = list(reader.fieldnames or [])
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise StorageError(f"Cannot read the proxy score table {file}: {exc}") from exc
    columns = {REFERENCE_ALIASES.get(c, c): c for c in header}
    known = set(registry.names())
    if "arch" not in columns:
        raise InvalidConfigError(
            f"The proxy score table {file} has no 'arch' column (it has {header}); it needs "
            "one column 'arch' with the architecture text and one column per proxy."
        )
    if proxies is None:
        wanted = [name for name in columns if name in known]
    else:
        wanted = [name.replace("-", "_") for name in proxies]
    missing = [name for name in wanted if name not in columns]
    if missing or not wanted:
        raise InvalidConfigError(
            f"The proxy score table {file} lacks the column(s) {missing or 'of any proxy'}; it "
            f"has {header}. Expected one column per proxy among {sorted(known)}."
        )
    if dataset is not None:
        if "dataset" not in columns:
            raise InvalidConfigError(
                f"The proxy score table {file} has no 'dataset' column; pass dataset=None to "
                "read every row."
            )
        present = sorted({r["dataset"] for r in rows})
        rows = [r for r in rows if r["dataset"].lower() == dataset.lower()]
        if not rows:
            raise InvalidConfigError(
                f"The proxy score table {file} has no rows for dataset {dataset!r}; it has "
                f"{present}."
            )
    the_space = spaces.create(space) if isinstance(space, str) else space
    archs = []
    values = np.empty((len(rows), len(wanted)))
    for i, r in enumerate(rows):
        archs.append(the_space.parse(r[columns["arch"]]))
        for j, name in enumerate(wanted):
            try:
                values[i, j] = float(r[columns[name]])
            except (TypeError, ValueError):
                raise InvalidConfigError(
                    f"Row {i + 2} of {file} has a non-numeric {columns[name]!r}: "
                    f"{r[columns[name]]!r}."
                ) from None
    if np.isnan(values).any():
        raise InvalidConfigError(f"The proxy score table {file} holds NaN scores.")
    source = f"{file.name}" + (f" ({dataset})" if dataset else "")
    return ProxyScores(tuple(archs), tuple(wanted), values, source)


# -- computed scores ----------------------------------------------------------------------
def compute_scores(
    space: Any,
    archs: Iterable[Architecture],
    proxies: Sequence[str],
    *,
    data: str | os.PathLike[str] | None = None,
    dataset: str = "cifar10",
    batch_size: int = 64,
    seed: int = 0,
    device: str = "cpu",
    build: Mapping[str, Any] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ProxyScores:
    """Compute proxies for ``archs`` with real networks, reusing cached scores.

    Every architecture is built by ``space.build(arch, num_classes=..., **build)`` with
    PyTorch's default initialisation drawn from ``seed`` (the global RNG is restored
    afterwards) and scored on the batch :func:`~nasforge.proxies.batches.load_batch` gives
    for ``data``, ``dataset``, ``batch_size`` and ``seed``; proxies that share a pass share
    it (:func:`nasforge.proxies.compute`).

    Args:
        space: A :class:`~nasforge.spaces.SearchSpace` with ``build``, or its registry name.
        archs: The architectures.
        proxies: Proxy names.
        data, dataset, batch_size, seed: The batch (see ``load_batch``) and the seed of the
            initial weights.
        device: ``"cpu"`` or ``"cuda"`` (any torch device string).
        build: Extra keyword arguments of ``space.build`` (e.g. ``{"channels": 8}``).
        cache_dir: Keep scores on disk here, one JSON-lines file per (space, proxy, seed,
            batch, build); ``None`` keeps them in this process only.
        progress: Called with ``(done, total)`` after each architecture.

    Raises:
        UnknownNameError: An unknown proxy.
        UnsupportedOperationError: A space without a model builder.
    """
    import torch

    from nasforge import proxies as registry
    from nasforge import spaces
    from nasforge.proxies.batches import dataset_info, load_batch

    the_space = spaces.create(space) if isinstance(space, str) else space
    names = tuple(registry.create(p).name for p in proxies)
    archs = tuple(archs)
    info = dataset_info(dataset)
    build_kwargs = {"num_classes": info.num_classes, **dict(build or {})}
    setting = json.dumps(
        {
            "data": None if data is None else str(Path(data).resolve()),
            "dataset": dataset.lower(),
            "batch_size": batch_size,
            "build": build_kwargs,
            "device": torch.device(device).type,
        },
        sort_keys=True,
    )
    tag = hashlib.sha256(setting.encode()).hexdigest()[:12]
    disk = _DiskCache(cache_dir, the_space.name, names, seed, tag, setting)
    values = np.full((len(archs), len(names)), np.nan)
    todo: list[int] = []
    for i, arch in enumerate(archs):
        for j, name in enumerate(names):
            key = (the_space.name, name, str(seed), tag, arch.text)
            if key in _MEMORY:
                values[i, j] = _MEMORY[key]
            elif (cached := disk.get(name, arch.text)) is not None:
                values[i, j] = _MEMORY[key] = cached
        if np.isnan(values[i]).any():
            todo.append(i)
    batch = None
    for done, i in enumerate(todo, start=1):
        if batch is None:
            batch = load_batch(data, dataset=dataset, batch_size=batch_size, seed=seed).to(device)
        arch = archs[i]
        missing = [names[j] for j in range(len(names)) if np.isnan(values[i, j])]

        def fresh(arch: Architecture = arch) -> Any:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(seed))
                return the_space.build(arch, **build_kwargs).to(device)

        scores = registry.compute(fresh(), missing, batch, seed=seed, fresh=fresh)
        for name, value in scores.items():
            j = names.index(name)
            values[i, j] = value
            _MEMORY[(the_space.name, name, str(seed), tag, arch.text)] = value
            disk.put(name, arch.text, value)
        if progress is not None:
            progress(done, len(todo))
    disk.flush()
    source = f"computed ({'synthetic batch' if data is None else str(data)}, seed {seed})"
    return ProxyScores(archs, names, values, source)


class _DiskCache:
    """JSON-lines files ``<space>-<proxy>-seed<seed>-<tag>.jsonl`` of ``{"arch", "score"}``."""

    def __init__(
        self,
        folder: str | os.PathLike[str] | None,
        space: str,
        names: Sequence[str],
        seed: int,
        tag: str,
        setting: str,
    ) -> None:
        self.folder = None if folder is None else Path(folder)
        self.loaded: dict[str, dict[str, float]] = {}
        self.pending: dict[str, list[tuple[str, float]]] = {}
        if self.folder is None:
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(
                f"Cannot create the proxy cache folder {self.folder}: {exc}"
            ) from exc
        self.files = {n: self.folder / f"{space}-{n}-seed{seed}-{tag}.jsonl" for n in names}
        (self.folder / f"settings-{tag}.json").write_text(setting + "\n")
        for name, file in self.files.items():
            table: dict[str, float] = {}
            if file.exists():
                for line in file.read_text().splitlines():
                    try:
                        record = json.loads(line)
                        table[record["arch"]] = float(record["score"])
                    except (ValueError, KeyError, TypeError):
                        logger.warning("skipping a malformed line of %s", file)
            self.loaded[name] = table

    def get(self, name: str, arch: str) -> float | None:
        if self.folder is None:
            return None
        return self.loaded[name].get(arch)

    def put(self, name: str, arch: str, value: float) -> None:
        if self.folder is None:
            return
        self.pending.setdefault(name, []).append((arch, value))
        if len(self.pending[name]) >= 10:
            self._write(name)

    def _write(self, name: str) -> None:
        lines = "".join(json.dumps({"arch": a, "score": v}) + "\n" for a, v in self.pending[name])
        with open(self.files[name], "a") as handle:
            handle.write(lines)
        self.pending[name] = []

    def flush(self) -> None:
        for name in list(self.pending):
            if self.pending[name]:
                self._write(name)


# -- candidate pools for training-free search --------------------------------------------------
_REFERENCE_MEMO: dict[tuple[Any, ...], ProxyScores] = {}


def candidate_scores(
    space: Any,
    proxies: Sequence[str],
    rng: np.random.Generator,
    *,
    scores: str | os.PathLike[str] | None = None,
    dataset: str = "cifar10",
    pool_size: int | None = None,
    data: str | os.PathLike[str] | None = None,
    batch_size: int = 16,
    build: Mapping[str, Any] | None = None,
    device: str = "cpu",
    cache_dir: str | os.PathLike[str] | None = None,
) -> ProxyScores:
    """The candidates of a training-free search and their proxy scores.

    With ``scores`` (a table :func:`read_reference` reads), the candidates are the table's
    architectures: all of them, or ``pool_size`` drawn with ``rng``. Without, ``pool_size``
    (default 20, a quick start; raise it for a real search) distinct architectures are
    sampled from ``space`` with ``rng`` and scored
    by :func:`compute_scores` with the other arguments.
    """
    if pool_size is not None and pool_size < 1:
        raise InvalidConfigError(f"pool_size must be at least 1, got {pool_size}.")
    if scores is not None:
        file = Path(scores)
        stamp = file.stat().st_mtime if file.exists() else None
        key = (str(file.resolve()), space.name, dataset, tuple(proxies), stamp)
        table = _REFERENCE_MEMO.get(key)
        if table is None:
            table = read_reference(file, space=space, dataset=dataset, proxies=proxies)
            _REFERENCE_MEMO[key] = table
        if pool_size is not None and pool_size < len(table):
            rows = np.sort(rng.choice(len(table), size=pool_size, replace=False))
            table = table.subset(rows)
        return table
    pool = space.sample_distinct(rng, 20 if pool_size is None else pool_size)
    return compute_scores(
        space,
        pool,
        proxies,
        data=data,
        dataset=dataset,
        batch_size=batch_size,
        seed=0,
        device=device,
        build=build,
        cache_dir=cache_dir,
    )

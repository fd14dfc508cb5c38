"""What the evaluators of trained super-networks share: the cache of measured accuracies in the
super-network's folder, digests of files and images for its key, the evaluation of a
sub-network and the evaluator's spec (:class:`SubnetEvaluator`), the count checks, and the
training images checked against those the super-network was trained on.

Used by :mod:`nasforge.evaluators.supernet` (``"supernet"``) and
:mod:`nasforge.evaluators.super_transformer` (``"super-transformer"``). A cache file is
``<folder>/measured-<key>.json``, written atomically, the key a hash of everything the accuracy
depends on (given by the evaluator); another study reads the values instead of measuring again.
Imports torch only through the images it is given.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasforge.errors import InvalidConfigError, UnknownNameError
from nasforge.evaluators.base import Evaluator
from nasforge.trial import Result

if TYPE_CHECKING:
    from nasforge.architecture import Architecture
    from nasforge.train.data import DataSplits

__all__ = [
    "ACCURACY",
    "CACHED",
    "CACHE_PREFIX",
    "SubnetEvaluator",
    "cache_file",
    "check_counts",
    "file_digest",
    "images_digest",
    "read_cache",
    "trained_splits",
]

#: The accuracy metric (percent of the held-out images).
ACCURACY = "valid_acc"
#: A trial's mark that its accuracy came from the cache (1), by the sub-network searches.
CACHED = "valid_acc_cached"
#: The cache files in a super-network's folder (``measured-<key>.json``).
CACHE_PREFIX = "measured-"


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes (``"missing"`` when it is absent)."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except FileNotFoundError:
        return "missing"
    return digest.hexdigest()


def images_digest(parts: Iterable[tuple[Any, int]], mean: Any, std: Any) -> str:
    """SHA-256 of the first ``n`` images and labels of each ``(part, n)`` (parts with
    ``images`` and ``labels`` tensors) and of the normalisation ``mean`` and ``std``."""
    images = hashlib.sha256()
    for part, n in parts:
        images.update(part.images[:n].contiguous().numpy().tobytes())
        images.update(part.labels[:n].contiguous().numpy().tobytes())
    images.update(json.dumps([mean, std]).encode())
    return images.hexdigest()


def cache_file(folder: Path, material: Mapping[str, Any]) -> Path:
    """``folder/measured-<key>.json``, the key a hash of ``material`` (JSON-able)."""
    text = json.dumps(material, sort_keys=True, default=str).encode()
    key = hashlib.sha256(text).hexdigest()[:20]
    return folder / f"{CACHE_PREFIX}{key}.json"


def read_cache(path: Path) -> dict[str, float]:
    """The accuracies of a cache file (empty when it is absent or unreadable)."""
    try:
        values = json.loads(path.read_text())["values"]
        return {str(k): float(v) for k, v in values.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def check_counts(**counts: Any) -> None:
    """Raise :class:`InvalidConfigError` for a count that is not an integer >= 1."""
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidConfigError(f"{name} must be an integer >= 1, got {value!r}.")


def trained_splits(
    dataset: str,
    data_path: Path | None,
    synthetic: Any,
    cache_dir: Path | None,
    expected: Mapping[str, Any],
    trained: str,
) -> DataSplits:
    """The evaluator's training images, checked against ``expected`` (the ``data`` of the
    super-network's run; ``trained`` names it, e.g. ``"The supernet in 'DIR'"``).

    Raises:
        InvalidConfigError: Another number of images or classes than it was trained on.
    """
    from nasforge.evaluators._images import TrainingImages

    images = TrainingImages(dataset, data_path, synthetic, cache_dir, None, 0, None)
    splits = images.load()
    if (
        len(splits.train) != expected["train_images"]
        or splits.num_classes != expected["num_classes"]
    ):
        raise InvalidConfigError(
            f"{trained} was trained on {expected['name']!r} ({expected['train_images']} "
            f"training images of {expected['num_classes']} classes), but the evaluator's data "
            f"has {len(splits.train)} images of {splits.num_classes} classes; give the data it "
            "was trained on, so that the validation images are the held-out half."
        )
    return splits


class SubnetEvaluator(Evaluator):
    """An evaluator of the sub-networks of a trained super-network: its training images, its
    cached accuracy, its :meth:`evaluate` and the common part of its :meth:`spec`.

    A subclass sets ``kind`` (its registered name), ``dir``, ``manifest``, ``dataset``,
    ``data_path``, ``synthetic``, ``synthetic_params``, ``cache_dir``, ``valid_images``,
    ``runs``, ``measure``, ``threads``, ``cache``, ``_space``, ``_tables`` and ``_cached``
    (``{}``), and defines :meth:`cache_path` (which fills ``_cached`` from the file),
    :meth:`accuracy`, :meth:`measured` and :meth:`free_metrics`.
    """

    kind: str
    dir: Path
    dataset: str
    data_path: Path | None
    synthetic_params: dict[str, Any] | None
    synthetic: Any
    cache_dir: Path | None
    manifest: dict[str, Any]
    valid_images: int
    runs: int
    measure: bool
    threads: int | None
    cache: bool
    _space: Any
    _tables: dict[str, Any]
    _cached: dict[str, float]

    def cache_path(self) -> Path:
        """``dir/measured-<key>.json`` of the evaluator."""
        raise NotImplementedError

    def _open_source(
        self,
        what: str,
        trained_on: Mapping[str, Any],
        dataset: str,
        data: str | os.PathLike[str] | None,
        synthetic: Mapping[str, Any] | None,
        cache_dir: str | os.PathLike[str] | None,
    ) -> None:
        """Set where the training images are read (``dataset``, ``data_path``,
        ``synthetic``, ``synthetic_params``, ``cache_dir``); ``what`` names the super-network
        (``"supernet"``) and ``trained_on`` is the ``data`` of its run.

        Raises:
            UnknownNameError: An unknown dataset.
            InvalidConfigError: No data path for a dataset that is not synthetic.
        """
        from nasforge.evaluators._images import open_data
        from nasforge.evaluators.training import DATASETS

        if dataset not in DATASETS:
            raise UnknownNameError("dataset", dataset, DATASETS)
        if data is None and dataset != "synthetic":
            raise InvalidConfigError(
                f"The {what} evaluator needs the path of the {dataset} data the {what} in "
                f"{str(self.dir)!r} was trained on ({trained_on.get('name')!r}, "
                f"{trained_on.get('train_images')} training images): data=PATH (nasforge "
                "never downloads data), or dataset='synthetic' with the synthetic= settings "
                "of SyntheticImages it was trained on."
            )
        self.dataset = dataset
        self.data_path, self.synthetic = open_data(dataset, data, synthetic)
        self.synthetic_params = None if synthetic is None else dict(synthetic)
        self.cache_dir = None if cache_dir is None else Path(cache_dir)

    def _training_splits(self) -> DataSplits:
        """The evaluator's training images, checked against those the super-network was
        trained on (:func:`trained_splits`)."""
        return trained_splits(
            self.dataset,
            self.data_path,
            self.synthetic,
            self.cache_dir,
            self.manifest["run"]["data"],
            f"The {self.kind} in {str(self.dir)!r}",
        )

    def accuracy(self, arch: Architecture) -> float:
        """The accuracy of ``arch`` measured now."""
        raise NotImplementedError

    def measured(self, arch: Architecture) -> dict[str, float]:
        """The latency of ``arch``'s stand-alone network measured here."""
        raise NotImplementedError

    def cached_accuracy(self, arch: Architecture) -> float | None:
        """The accuracy of ``arch`` measured before with these settings (by any evaluator of
        this folder), or ``None`` (also without ``cache``)."""
        if not self.cache:
            return None
        text = self._space.canonical(self._space.check(arch)).text
        if text not in self._cached:  # another process may have measured it since
            self._cached = read_cache(self.cache_path())
        return self._cached.get(text)

    def cached_or_measured(self, arch: Architecture) -> float:
        """The cached accuracy of ``arch``, or its accuracy measured now (and cached)."""
        accuracy = self.cached_accuracy(arch)
        if accuracy is None:
            accuracy = self.accuracy(arch)
            if self.cache:
                self._remember(arch, accuracy)
        return accuracy

    def _remember(self, arch: Architecture, value: float) -> None:
        path = self.cache_path()
        known = {**read_cache(path), **self._cached}
        known[self._space.canonical(arch).text] = float(value)
        self._cached = known
        temporary = path.with_name(f"{path.name}.tmp-{os.getpid()}")
        payload = {"format": "nasforge-measured-accuracy", "metric": ACCURACY, "values": known}
        try:
            temporary.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
            os.replace(temporary, path)
        except OSError:  # a read-only folder: measure without caching
            temporary.unlink(missing_ok=True)

    def evaluate(self, arch: Architecture, fidelity: Mapping[str, Any] | None = None) -> Result:
        from nasforge.train.trainer import num_threads

        if fidelity:
            raise InvalidConfigError(
                f"The {self.kind} evaluator has no fidelity (it trains nothing), got "
                f"{dict(fidelity)!r}."
            )
        arch = self._space.check(arch)
        start = time.perf_counter()
        with num_threads(self.threads):
            metrics = {ACCURACY: self.cached_or_measured(arch), **self.free_metrics(arch)}
            if self.measure:
                metrics.update(self.measured(arch))
        seconds = time.perf_counter() - start
        return Result(metrics, cost=max(seconds, 1e-9), seconds=seconds)

    def _spec(self, settings: Mapping[str, Any]) -> dict[str, Any] | None:
        """The spec: the name, folder and dataset, then ``settings``, the validation images,
        the data, the tables and the measurement (``None`` with a table built in memory)."""
        sources = {name: table.source for name, table in self._tables.items()}
        if None in sources.values():
            return None  # a table built in memory
        out: dict[str, Any] = {
            "name": self.kind,
            "dir": str(self.dir),
            "dataset": self.dataset,
            **settings,
            "valid_images": self.valid_images,
        }
        if self.data_path is not None:
            out["data"] = str(self.data_path)
        if self.synthetic_params is not None:
            out["synthetic"] = self.synthetic_params
        if sources:
            out["tables"] = sources
        if self.measure:
            out.update(measure=True, runs=self.runs)
        return out

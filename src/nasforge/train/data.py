"""Image classification data held in memory as uint8 tensors: CIFAR-10 and image folders.

nasforge never downloads data. It reads:

* the **CIFAR-10 python release** (Krizhevsky, 2009): a folder ``cifar-10-batches-py`` with
  the pickles ``data_batch_1`` .. ``data_batch_5``, ``test_batch`` and ``batches.meta``
  (or the folder that holds it, or its ``cifar-10-python.tar.gz``);
* an **image-folder tree**: ``train/<class>/*.png|jpg`` and ``test/<class>/...``, classes
  numbered in the alphabetical order of their folder names, the same classes in both splits
  (or a ``.tar.gz`` of such a tree, or the folder that holds it as its only sub-folder);
* :class:`SyntheticImages`, small class-dependent patterns for tests.

An archive is extracted once, into a cache folder: ``cache_dir`` (``--cache-dir``) or the
user cache (``$XDG_CACHE_HOME/nasforge/datasets``, by default
``~/.cache/nasforge/datasets``), never next to the user's data (CIFAR-10 takes 414 MB
unpacked); INFO log lines report the extraction's progress. Decoding an image folder is slow
(60,000 CIFAR JPEGs take about 15 s on one core), so the decoded arrays are cached as a
``.npz`` file in the same cache folder, keyed by a fingerprint of the file names, sizes and
times: later loads take well under a second, and a changed folder is decoded again. An
extraction or decoded cache that an older nasforge left next to the data
(``<name>.nasforge``) is still used when it is up to date.

The python release's files are pickles; they are read with an unpickler that accepts only
the numpy array and ``bytes`` constructors those files use, so a tampered file cannot run code.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from nasforge.errors import InvalidConfigError

__all__ = [
    "CIFAR10_CLASSES",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "MISSING_DATA_HINT",
    "DataSplits",
    "DatasetError",
    "ImageData",
    "SyntheticImages",
    "extract_archive",
    "load_cifar10",
    "load_image_folder",
    "split_train_valid",
    "stratified_indices",
]

logger = logging.getLogger(__name__)

CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
#: Per-channel mean and standard deviation of the CIFAR-10 training images, as NAS-Bench-201
#: normalises them (``[125.3, 123.0, 113.9] / 255`` and ``[63.0, 62.1, 66.7] / 255``).
CIFAR10_MEAN: tuple[float, float, float] = (125.3 / 255, 123.0 / 255, 113.9 / 255)
CIFAR10_STD: tuple[float, float, float] = (63.0 / 255, 62.1 / 255, 66.7 / 255)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".ppm", ".tif", ".tiff")
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tar.xz")
_PY_BATCHES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")
_PY_FOLDER = "cifar-10-batches-py"
_EXTRACTED_MARK = ".nasforge-extracted"
_CACHE_VERSION = "1"

#: What to put where data is missing (nasforge never downloads).
MISSING_DATA_HINT = (
    "nasforge does not download data. Put the CIFAR-10 python release there (the folder "
    f"{_PY_FOLDER} with data_batch_1..5 and test_batch, or cifar-10-python.tar.gz, from "
    "https://www.cs.toronto.edu/~kriz/cifar.html), or an image-folder tree "
    "(train/<class>/*.png|jpg and test/<class>/...) or a .tar.gz of one, and pass its path."
)


class DatasetError(InvalidConfigError):
    """Data is missing, laid out wrongly or unreadable; the message names the file or folder."""


# -- in-memory data ----------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class ImageData:
    """Labelled images in memory.

    Attributes:
        images: uint8 tensor ``(N, C, H, W)``.
        labels: int64 tensor ``(N,)`` of class indices.
        classes: The class names; label ``i`` is ``classes[i]``.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise DatasetError(
                f"ImageData.images must be a uint8 tensor (N, C, H, W), got "
                f"{self.images.dtype} of shape {tuple(self.images.shape)}."
            )
        if self.labels.shape != (self.images.shape[0],):
            raise DatasetError(
                f"ImageData has {self.images.shape[0]} images but labels of shape "
                f"{tuple(self.labels.shape)}."
            )
        if len(self.labels) and (
            int(self.labels.min()) < 0 or int(self.labels.max()) >= len(self.classes)
        ):
            raise DatasetError(
                f"ImageData labels must be in 0..{len(self.classes) - 1} ({len(self.classes)} "
                f"classes), got {int(self.labels.min())}..{int(self.labels.max())}."
            )

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def resolution(self) -> int:
        """The image height (CIFAR images are square)."""
        return int(self.images.shape[-2])

    def subset(self, indices: torch.Tensor | Sequence[int]) -> ImageData:
        """The images at ``indices`` (a copy)."""
        index = torch.as_tensor(indices, dtype=torch.long)
        return ImageData(self.images[index], self.labels[index], self.classes)

    def resized(self, size: int) -> ImageData:
        """The images resized to ``size x size`` (see :func:`nasforge.train.augment.resize`)."""
        from nasforge.train.augment import resize

        if self.images.shape[-2:] == (size, size):
            return self
        return ImageData(resize(self.images, size), self.labels, self.classes)

    def class_counts(self) -> list[int]:
        """Images per class, in class order."""
        return torch.bincount(self.labels, minlength=len(self.classes)).tolist()


@dataclass(frozen=True, eq=False)
class DataSplits:
    """A dataset's training and test images with its normalisation.

    Attributes:
        name: ``"cifar10"``, ``"folder"`` or ``"synthetic"``.
        train: The training images (a validation split is cut from them with
            :func:`split_train_valid`).
        test: The test images.
        mean, std: Per-channel normalisation of images scaled to ``[0, 1]``.
        source: Where the data was read from (a path, or a description).
    """

    name: str
    train: ImageData
    test: ImageData
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str = ""

    @property
    def classes(self) -> tuple[str, ...]:
        return self.train.classes

    @property
    def num_classes(self) -> int:
        return len(self.train.classes)

    @property
    def resolution(self) -> int:
        return self.train.resolution


def stratified_indices(labels: torch.Tensor, count: int, seed: int) -> torch.Tensor:
    """``count`` indices drawn without replacement, each class in proportion to its share.

    Class ``c`` with ``n_c`` of ``n`` samples gets ``floor(count * n_c / n)`` places, and the
    places left over go to the classes with the largest remainders (lower class first on a
    tie). Within a class the samples are the first of a random permutation drawn from
    ``seed``, so a larger ``count`` with the same seed takes (almost always) a superset.
    The indices are returned in ascending order.
    """
    n = int(labels.shape[0])
    if not 0 <= count <= n:
        raise InvalidConfigError(f"Cannot take {count} of {n} samples.")
    generator = torch.Generator().manual_seed(int(seed))
    perm = torch.randperm(n, generator=generator)
    shuffled = labels[perm]
    num_classes = int(labels.max()) + 1 if n else 0
    counts = torch.bincount(labels, minlength=num_classes).tolist()
    exact = [count * c / n for c in counts] if n else []
    quota = [int(e) for e in exact]
    order = sorted(range(num_classes), key=lambda c: (-(exact[c] - quota[c]), c))
    for c in order[: count - sum(quota)]:
        quota[c] += 1
    taken = [perm[shuffled == c][: quota[c]] for c in range(num_classes)]
    if not taken:
        return torch.empty(0, dtype=torch.long)
    return torch.sort(torch.cat(taken)).values


def split_train_valid(
    data: ImageData, valid_size: int, seed: int = 0
) -> tuple[ImageData, ImageData]:
    """Split ``data`` into training and validation images, class-balanced, fixed by ``seed``.

    NAS-Bench-201's ``cifar10-valid`` trains on 25,000 of CIFAR-10's training images and
    validates on the other 25,000 (its own fixed split file; nasforge draws a stratified one
    from ``seed``).

    Raises:
        InvalidConfigError: ``valid_size`` leaves no image on one side.
    """
    n = len(data)
    if isinstance(valid_size, bool) or not isinstance(valid_size, int) or not 0 < valid_size < n:
        raise InvalidConfigError(
            f"valid_size must be an integer between 1 and {n - 1} (the training set has {n} "
            f"images), got {valid_size!r}."
        )
    valid = stratified_indices(data.labels, valid_size, seed)
    keep = torch.ones(n, dtype=torch.bool)
    keep[valid] = False
    train = torch.nonzero(keep).flatten()
    return data.subset(train), data.subset(valid)


# -- synthetic ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class SyntheticImages:
    """A small, learnable image set for tests: each class has its own colour and stripe
    pattern; each image shifts the pattern, scales its contrast and adds noise.

    Class ``k`` gets a random mean colour and a sinusoidal grating of a random orientation and
    frequency (both drawn from ``seed``); image ``i`` of it is
    ``colour + contrast_i * grating(phase_i) + noise``, clipped to ``[0, 255]``. The colours
    alone let a tiny network beat chance within an epoch; the gratings reward convolutions.

    Args:
        num_classes: Classes.
        n_train, n_test: Images in each split (as equal per class as possible).
        size: Image side in pixels.
        noise: Standard deviation of the pixel noise, in 0..255 units.
        seed: Seed of the whole set.

    Example:
        >>> splits = SyntheticImages(num_classes=3, n_train=30, n_test=9, size=8).load()
        >>> tuple(splits.train.images.shape), splits.test.class_counts()
        ((30, 3, 8, 8), [3, 3, 3])
    """

    num_classes: int = 10
    n_train: int = 1000
    n_test: int = 500
    size: int = 16
    noise: float = 24.0
    seed: int = 0

    def __post_init__(self) -> None:
        for label in ("num_classes", "n_train", "n_test", "size"):
            value = getattr(self, label)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidConfigError(
                    f"SyntheticImages {label} must be a positive integer, got {value!r}."
                )
        if self.num_classes < 2:
            raise InvalidConfigError("SyntheticImages needs at least 2 classes.")

    def load(self) -> DataSplits:
        """The training and test images (the same for the same settings)."""
        rng = np.random.default_rng(self.seed)
        colours = rng.uniform(40, 215, size=(self.num_classes, 3))
        angles = rng.uniform(0, np.pi, size=self.num_classes)
        freqs = rng.uniform(0.5, 2.5, size=self.num_classes) * 2 * np.pi / self.size
        signs = rng.choice([-1.0, 1.0], size=(self.num_classes, 3))
        ys, xs = np.mgrid[0 : self.size, 0 : self.size].astype(np.float64)

        def make(n: int, stream: int) -> ImageData:
            local = np.random.default_rng([self.seed, stream])
            labels = np.arange(n) % self.num_classes
            local.shuffle(labels)
            phase = local.uniform(0, 2 * np.pi, size=n)
            contrast = local.uniform(30, 60, size=n)
            u = xs[None] * np.cos(angles[labels])[:, None, None]
            u = u + ys[None] * np.sin(angles[labels])[:, None, None]
            wave = np.sin(u * freqs[labels][:, None, None] + phase[:, None, None])
            images = (
                colours[labels][:, :, None, None]
                + contrast[:, None, None, None] * signs[labels][:, :, None, None] * wave[:, None]
                + local.normal(0, self.noise, size=(n, 3, self.size, self.size))
            )
            pixels = torch.from_numpy(np.clip(np.rint(images), 0, 255).astype(np.uint8))
            names = tuple(f"class{k}" for k in range(self.num_classes))
            return ImageData(pixels, torch.from_numpy(labels.astype(np.int64)), names)

        train = make(self.n_train, 1)
        test = make(self.n_test, 2)
        mean, std = _channel_stats(train.images)
        return DataSplits("synthetic", train, test, mean, std, source=repr(self))


# -- loading from disk -------------------------------------------------------------------------
def load_cifar10(
    path: str | os.PathLike[str],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    workers: int | None = None,
) -> DataSplits:
    """CIFAR-10 from the python release, an image-folder tree, or a ``.tar.gz`` of either.

    Args:
        path: The folder ``cifar-10-batches-py``, a folder holding it, an image-folder tree
            (``train/<class>/``, ``test/<class>/``), or an archive of one of these.
        cache_dir: Where to extract archives and keep decoded arrays when the folder next
            to the data is not writable (default: the user cache, see the module docstring).
        workers: Threads decoding images (default: up to 4, one per CPU).

    Returns:
        50,000 training and 10,000 test images normalised with :data:`CIFAR10_MEAN` and
        :data:`CIFAR10_STD`.

    Raises:
        DatasetError: Nothing at ``path`` (the message says what to put there), a folder
            of neither layout, missing batches or class folders, an unreadable image (named).

    Example:
        >>> splits = load_cifar10("/data/cifar10-jpeg.tar.gz")  # doctest: +SKIP
        >>> len(splits.train), len(splits.test), splits.classes[:2]  # doctest: +SKIP
        (50000, 10000, ('airplane', 'automobile'))
    """
    kind, root = _locate(Path(path), cache_dir)
    if kind == "python":
        from nasforge.train._readers import _load_python_release

        train, test = _load_python_release(root)
    else:
        from nasforge.train._readers import _load_tree

        train, test = _load_tree(root, cache_dir, workers)
        if len(train.classes) != 10:
            raise DatasetError(
                f"{root} is an image-folder tree of {len(train.classes)} classes "
                f"({', '.join(train.classes)}); CIFAR-10 has 10. For another dataset use "
                "load_image_folder (evaluator dataset='folder')."
            )
    return DataSplits("cifar10", train, test, CIFAR10_MEAN, CIFAR10_STD, source=str(root))


def load_image_folder(
    path: str | os.PathLike[str],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    workers: int | None = None,
) -> DataSplits:
    """Any image-folder tree (``train/<class>/``, ``test/<class>/``) or a ``.tar.gz`` of one;
    the normalisation is the per-channel mean and standard deviation of its training images.

    Raises:
        DatasetError: As :func:`load_cifar10`.
    """
    kind, root = _locate(Path(path), cache_dir)
    if kind != "folder":
        raise DatasetError(f"{root} is the CIFAR-10 python release; load it with load_cifar10.")
    from nasforge.train._readers import _load_tree

    train, test = _load_tree(root, cache_dir, workers)
    mean, std = _channel_stats(train.images)
    return DataSplits("folder", train, test, mean, std, source=str(root))


def _locate(path: Path, cache_dir: str | os.PathLike[str] | None) -> tuple[str, Path]:
    """What the data at ``path`` is (``"python"`` or ``"folder"``) and its folder."""
    if not path.exists():
        raise DatasetError(f"No data at {str(path)!r}. {MISSING_DATA_HINT}")
    if path.is_file():
        if not _is_archive(path):
            raise DatasetError(
                f"{str(path)!r} is a file but not a .tar.gz/.tgz/.tar archive. {MISSING_DATA_HINT}"
            )
        path = extract_archive(path, cache_dir)
    for candidate in _candidates(path):
        if all((candidate / name).is_file() for name in _PY_BATCHES[:1]):
            return "python", candidate
        if (candidate / "train").is_dir() or (candidate / "test").is_dir():
            return "folder", candidate
    entries = sorted(p.name for p in path.iterdir() if not p.name.startswith("."))[:8]
    raise DatasetError(
        f"{str(path)!r} holds neither the CIFAR-10 python release (data_batch_1..5, "
        "test_batch) nor an image-folder tree (train/ and test/ folders of class folders); "
        f"it holds {entries or 'nothing'}. {MISSING_DATA_HINT}"
    )


def _candidates(path: Path) -> Iterator[Path]:
    """``path``, its ``cifar-10-batches-py``, and its only visible sub-folder (an archive's
    top-level folder)."""
    yield path
    if (path / _PY_FOLDER).is_dir():
        yield path / _PY_FOLDER
    subdirs = [p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")]
    if len(subdirs) == 1:
        yield subdirs[0]
        if (subdirs[0] / _PY_FOLDER).is_dir():
            yield subdirs[0] / _PY_FOLDER


def _is_archive(path: Path) -> bool:
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


def _archive_stem(path: Path) -> str:
    name = path.name
    for suffix in ARCHIVE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _user_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "nasforge" / "datasets"


def _short_hash(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def _cache_place(beside: Path, name: str, cache_dir: str | os.PathLike[str] | None) -> Path:
    """``cache_dir`` (or the user cache) ``/ <name>-<hash of beside's path>``: caches never
    go next to the user's data."""
    base = Path(cache_dir) if cache_dir is not None else _user_cache()
    stem, dot, ext = name.partition(".")
    tagged = f"{stem}-{_short_hash(str(beside.resolve()))}"
    return base / (tagged + (dot + ext if dot else ""))


def extract_archive(
    archive: str | os.PathLike[str], cache_dir: str | os.PathLike[str] | None = None
) -> Path:
    """Extract ``archive`` once and return the folder it was extracted into.

    The folder is ``<stem>.nasforge-<hash>`` under ``cache_dir`` or the user cache (an up to
    date ``<stem>.nasforge`` that an older nasforge extracted next to the archive is used as
    it is). A marker file records the archive's size and time; a changed archive is
    extracted again. Members that would land outside the folder (absolute paths, ``..``,
    links) are refused. Progress is logged at INFO (logger ``nasforge.train.data``).

    Raises:
        DatasetError: The archive is unreadable or holds an unsafe member.
    """
    source = Path(archive)
    info = source.stat()
    target = _cache_place(source, _archive_stem(source) + ".nasforge", cache_dir)
    stamp = f"{source.resolve()}\n{info.st_size}\n{info.st_mtime_ns}\n"
    legacy = source.parent / (_archive_stem(source) + ".nasforge")
    for place in (target, legacy) if cache_dir is None else (target,):
        marker = place / _EXTRACTED_MARK
        with contextlib.suppress(OSError):
            if marker.is_file() and marker.read_text() == stamp:
                return place
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DatasetError(
            f"Cannot create {str(target.parent)!r} to extract {str(source)!r} into: "
            f"{err.strerror or err}; pass a writable cache_dir (--cache-dir)."
        ) from err
    temporary = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(temporary, ignore_errors=True)
    logger.info(
        "extracting %s (%.0f MB) into %s (once; --cache-dir chooses the folder)",
        source,
        info.st_size / 1e6,
        target,
    )
    try:
        with tarfile.open(source) as tar:
            members = [_safe_member(m, source) for m in tar.getmembers()]
            _extract_in_steps(tar, members, temporary)
    except (tarfile.TarError, OSError, EOFError) as err:
        shutil.rmtree(temporary, ignore_errors=True)
        raise DatasetError(f"Cannot extract {str(source)!r}: {err}") from err
    (temporary / _EXTRACTED_MARK).write_text(stamp)
    if target.exists():
        shutil.rmtree(target)  # a stale or partial extraction of ours
    os.replace(temporary, target)
    return target


def _extract_in_steps(
    tar: tarfile.TarFile, members: list[tarfile.TarInfo], folder: Path, steps: int = 10
) -> None:
    """Extract ``members`` in ``steps`` parts, logging the progress after each."""
    total = sum(m.size for m in members) or 1
    done = 0
    size = max(1, -(-len(members) // steps))
    for start in range(0, len(members), size):
        part = members[start : start + size]
        if hasattr(tarfile, "data_filter"):
            tar.extractall(folder, members=part, filter="data")
        else:  # pragma: no cover - Python < 3.11.4; members were checked before
            tar.extractall(folder, members=part)
        done += sum(m.size for m in part)
        logger.info(
            "extracted %d of %d files (%.0f%%)",
            min(start + size, len(members)),
            len(members),
            100.0 * done / total,
        )


def _safe_member(member: tarfile.TarInfo, archive: Path) -> tarfile.TarInfo:
    name = member.name
    parts = Path(name).parts
    if name.startswith(("/", "\\")) or ".." in parts or not (member.isfile() or member.isdir()):
        raise DatasetError(
            f"Refusing to extract {str(archive)!r}: member {name!r} is a link, a device or lies "
            "outside the target folder."
        )
    return member


def _channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of uint8 images, scaled to ``[0, 1]``."""
    x = images.double().div(255.0)
    mean = x.mean(dim=(0, 2, 3))
    std = x.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)

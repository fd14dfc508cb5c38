"""Reading images from disk: CIFAR-10's python release and image-folder trees (decoded in
parallel, cached as tensors). Private to :mod:`nasforge.train.data`, which finds the data and
calls these readers.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from nasforge.train.data import (
    _CACHE_VERSION,
    _PY_BATCHES,
    CIFAR10_CLASSES,
    IMAGE_SUFFIXES,
    DatasetError,
    ImageData,
    _cache_place,
    logger,
)


# -- the python release ------------------------------------------------------------------------
class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles only numpy arrays, bytes, and the built-in containers."""

    _ALLOWED: ClassVar[dict[tuple[str, str], tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"): ("numpy._core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"): ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"): ("numpy", "ndarray"),
        ("numpy", "dtype"): ("numpy", "dtype"),
        ("_codecs", "encode"): ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        target = self._ALLOWED.get((module, name))
        if target is None:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")
        try:
            return super().find_class(*target)
        except (ImportError, AttributeError):  # numpy < 2 has no numpy._core
            return super().find_class(module.replace("numpy._core", "numpy.core"), name)


def _unpickle(path: Path) -> Any:
    try:
        with path.open("rb") as file:
            return _ArrayUnpickler(file, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, OSError) as err:
        raise DatasetError(
            f"Cannot read {str(path)!r} as a CIFAR-10 python batch (a pickle of numpy arrays): "
            f"{err}. Replace it with the file from the original release."
        ) from err


def _load_python_release(folder: Path) -> tuple[ImageData, ImageData]:
    missing = [name for name in _PY_BATCHES if not (folder / name).is_file()]
    if missing:
        raise DatasetError(
            f"The CIFAR-10 python release in {str(folder)!r} is incomplete: {', '.join(missing)} "
            f"missing (it needs {', '.join(_PY_BATCHES)})."
        )
    classes = CIFAR10_CLASSES
    if (folder / "batches.meta").is_file():
        meta = _unpickle(folder / "batches.meta")
        names = meta.get(b"label_names") if isinstance(meta, dict) else None
        if names:
            classes = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)

    def read(names: Sequence[str]) -> ImageData:
        images, labels = [], []
        for name in names:
            batch = _unpickle(folder / name)
            try:
                data = np.asarray(batch[b"data"], dtype=np.uint8)
                label = np.asarray(batch[b"labels"], dtype=np.int64)
            except (KeyError, TypeError, ValueError) as err:
                raise DatasetError(
                    f"{str(folder / name)!r} is not a CIFAR-10 batch (needs b'data' and "
                    f"b'labels'): {err!r}"
                ) from None
            if data.ndim != 2 or data.shape[1] != 3072 or len(label) != len(data):
                raise DatasetError(
                    f"{str(folder / name)!r} holds data of shape {data.shape} and "
                    f"{len(label)} labels; a CIFAR-10 batch holds (N, 3072) bytes and N labels."
                )
            images.append(data.reshape(-1, 3, 32, 32))
            labels.append(label)
        return ImageData(
            torch.from_numpy(np.concatenate(images)),
            torch.from_numpy(np.concatenate(labels)),
            classes,
        )

    return read(_PY_BATCHES[:5]), read(_PY_BATCHES[5:])


# -- image-folder trees ------------------------------------------------------------------------
def _list_tree(root: Path) -> dict[str, dict[str, list[os.DirEntry[str]]]]:
    """``{split: {class: [image entries sorted by name]}}``, the layout checked."""
    missing = [split for split in ("train", "test") if not (root / split).is_dir()]
    if missing:
        raise DatasetError(
            f"The image folder {str(root)!r} has no {' or '.join(f'{m}/' for m in missing)} "
            "folder; it needs train/<class>/*.png|jpg and test/<class>/... with the same "
            "class folders."
        )
    tree: dict[str, dict[str, list[os.DirEntry[str]]]] = {}
    for split in ("train", "test"):
        classes: dict[str, list[os.DirEntry[str]]] = {}
        with os.scandir(root / split) as entries:
            for entry in entries:
                if entry.is_dir() and not entry.name.startswith("."):
                    classes[entry.name] = []
        if not classes:
            raise DatasetError(
                f"{str(root / split)!r} has no class folders; put the images of each class "
                f"in {split}/<class>/."
            )
        for name in classes:
            with os.scandir(root / split / name) as entries:
                files = [
                    e
                    for e in entries
                    if e.is_file()
                    and not e.name.startswith(".")
                    and e.name.lower().endswith(IMAGE_SUFFIXES)
                ]
            if not files:
                raise DatasetError(
                    f"The class folder {str(root / split / name)!r} holds no images "
                    f"({', '.join(IMAGE_SUFFIXES)})."
                )
            classes[name] = sorted(files, key=lambda e: e.name)
        tree[split] = classes
    train, test = set(tree["train"]), set(tree["test"])
    if train != test:
        parts = []
        if train - test:
            parts.append(f"only in train/: {', '.join(sorted(train - test))}")
        if test - train:
            parts.append(f"only in test/: {', '.join(sorted(test - train))}")
        raise DatasetError(
            f"The class folders of {str(root)!r} differ between train/ and test/ "
            f"({'; '.join(parts)}); both need the same classes."
        )
    return tree


def _fingerprint(tree: dict[str, dict[str, list[os.DirEntry[str]]]]) -> str:
    digest = hashlib.sha1(_CACHE_VERSION.encode())
    for split in sorted(tree):
        for name in sorted(tree[split]):
            for entry in tree[split][name]:
                info = entry.stat()
                line = f"{split}/{name}/{entry.name}:{info.st_size}:{info.st_mtime_ns};"
                digest.update(line.encode())
    return digest.hexdigest()


def _load_tree(
    root: Path, cache_dir: str | os.PathLike[str] | None, workers: int | None
) -> tuple[ImageData, ImageData]:
    tree = _list_tree(root)
    classes = tuple(sorted(tree["train"]))
    fingerprint = _fingerprint(tree)
    name = root.name if root.name.endswith(".nasforge") else f"{root.name}.nasforge"
    cache = _cache_place(root, f"{name}.npz", cache_dir)
    legacy = root.parent / f"{name}.npz"  # where an older nasforge kept it
    for place in (cache, legacy) if cache_dir is None else (cache,):
        cached = _read_cache(place, fingerprint, classes)
        if cached is not None:
            return cached
    logger.info("decoding the images of %s (once; cached in %s)", root, cache)
    splits = []
    for split in ("train", "test"):
        paths = [Path(e.path) for name in classes for e in tree[split][name]]
        labels = [i for i, name in enumerate(classes) for _ in tree[split][name]]
        images = _decode_all(paths, workers)
        splits.append(ImageData(torch.from_numpy(images), torch.tensor(labels), classes))
    if splits[0].images.shape[1:] != splits[1].images.shape[1:]:
        raise DatasetError(
            f"The train/ images of {str(root)!r} are {tuple(splits[0].images.shape[1:])} and "
            f"the test/ images {tuple(splits[1].images.shape[1:])}; they must be the same size."
        )
    _write_cache(cache, fingerprint, splits[0], splits[1])
    return splits[0], splits[1]


def _read_cache(
    path: Path, fingerprint: str, classes: tuple[str, ...]
) -> tuple[ImageData, ImageData] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            if str(archive["fingerprint"]) != fingerprint:
                return None
            if tuple(str(c) for c in archive["classes"]) != classes:
                return None
            parts = [
                ImageData(
                    torch.from_numpy(np.ascontiguousarray(archive[f"{split}_images"])),
                    torch.from_numpy(archive[f"{split}_labels"].astype(np.int64)),
                    classes,
                )
                for split in ("train", "test")
            ]
    except (OSError, KeyError, ValueError, DatasetError) as err:
        logger.warning("ignoring the unreadable decoded-image cache %s (%s)", path, err)
        return None
    return parts[0], parts[1]


def _write_cache(path: Path, fingerprint: str, train: ImageData, test: ImageData) -> None:
    temporary = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with temporary.open("wb") as file:
            np.savez(
                file,
                fingerprint=np.array(fingerprint),
                classes=np.array(train.classes),
                train_images=train.images.numpy(),
                train_labels=train.labels.numpy(),
                test_images=test.images.numpy(),
                test_labels=test.labels.numpy(),
            )
        os.replace(temporary, path)
    except OSError as err:  # a cache that cannot be written only costs time
        logger.warning("could not write the decoded-image cache %s: %s", path, err)
        with contextlib.suppress(OSError):
            temporary.unlink()


def _decode_one(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DatasetError(
            f"Cannot decode image {str(path)!r}: {err}. Replace or delete the file."
        ) from err


def _decode_all(paths: Sequence[Path], workers: int | None) -> np.ndarray:
    """Decode ``paths`` (all of one size) into a uint8 array ``(N, 3, H, W)``."""
    first = _decode_one(paths[0])
    height, width = first.shape[:2]
    out = np.empty((len(paths), 3, height, width), dtype=np.uint8)
    threads = workers or min(4, os.cpu_count() or 1)

    def place(i: int) -> None:
        pixels = first if i == 0 else _decode_one(paths[i])
        if pixels.shape[:2] != (height, width):
            raise DatasetError(
                f"Image {str(paths[i])!r} is {pixels.shape[1]}x{pixels.shape[0]} pixels; the "
                f"others are {width}x{height} (e.g. {str(paths[0])!r}). Resize it or remove it."
            )
        out[i] = pixels.transpose(2, 0, 1)

    if threads <= 1:
        for i in range(len(paths)):
            place(i)
    else:  # Pillow releases the GIL while decoding
        with ThreadPoolExecutor(threads) as pool:
            for _ in pool.map(place, range(len(paths))):
                pass
    return out

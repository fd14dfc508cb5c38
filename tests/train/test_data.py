"""Data: CIFAR-10's python release and image-folder trees (tiny fakes written here), archives,
the decoded-image cache, splits, SyntheticImages, and the errors for bad data."""

from __future__ import annotations

import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nasforge.train import _readers as readers_module
from nasforge.train.data import (
    CIFAR10_CLASSES,
    CIFAR10_MEAN,
    DatasetError,
    ImageData,
    SyntheticImages,
    extract_archive,
    load_cifar10,
    load_image_folder,
    split_train_valid,
    stratified_indices,
)


def write_python_release(root: Path, per_batch: int = 4, *, protocol: int = 2) -> Path:
    """A CIFAR-10 python release in miniature: 5 train batches and a test batch."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for k, name in enumerate(names):
        batch = {
            b"batch_label": name.encode(),
            b"labels": [(k + i) % 10 for i in range(per_batch)],
            b"data": rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8),
            b"filenames": [f"{i}.png".encode() for i in range(per_batch)],
        }
        (folder / name).write_bytes(pickle.dumps(batch, protocol=protocol))
    meta = {b"label_names": [c.encode() for c in CIFAR10_CLASSES], b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=protocol))
    return folder


def write_tree(
    root: Path,
    classes: tuple[str, ...] = ("b", "a", "c"),
    n: int = 3,
    size: int = 6,
    suffix: str = ".png",
) -> Path:
    """An image-folder tree: train/<class>/ with n images, test/<class>/ with 2."""
    rng = np.random.default_rng(1)
    for split, count in (("train", n), ("test", 2)):
        for k, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = np.full((size, size, 3), 20 * k, dtype=np.uint8)
                pixels[0, 0] = rng.integers(0, 256, 3)
                Image.fromarray(pixels).save(folder / f"{i:04d}{suffix}")
    return root


def test_python_release_from_its_folder_or_parent(tmp_path: Path) -> None:
    folder = write_python_release(tmp_path)
    for path in (folder, tmp_path):
        splits = load_cifar10(path)
        assert len(splits.train) == 20 and len(splits.test) == 4
        assert splits.train.images.shape == (20, 3, 32, 32)
        assert splits.classes == CIFAR10_CLASSES and splits.mean == CIFAR10_MEAN
    raw = pickle.loads((folder / "data_batch_1").read_bytes(), encoding="bytes")
    # the rows are R, G, B planes of 32x32
    assert torch.equal(splits.train.images[0], torch.from_numpy(raw[b"data"][0].reshape(3, 32, 32)))
    assert splits.train.labels[:4].tolist() == raw[b"labels"]


def test_python_release_from_a_tarball(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    write_python_release(tmp_path / "src")
    data = tmp_path / "data"
    data.mkdir()
    archive = data / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    caplog.set_level("INFO", logger="nasforge.train.data")
    splits = load_cifar10(archive)
    assert len(splits.train) == 20
    # extracted into the user's cache folder, never next to the data
    assert sorted(p.name for p in data.iterdir()) == ["cifar-10-python.tar.gz"]
    (extracted,) = (tmp_path / "user-cache" / "nasforge" / "datasets").iterdir()
    assert (extracted / "cifar-10-batches-py").is_dir()
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("extracting") and "MB" in m for m in messages)
    assert any(m.startswith("extracted") and m.endswith("(100%)") for m in messages)


def test_an_extraction_left_next_to_the_data_is_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_python_release(tmp_path / "src")
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    old = extract_archive(archive, tmp_path / "elsewhere")
    legacy = tmp_path / "cifar-10-python.nasforge"
    old.rename(legacy)  # where an older nasforge extracted it
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    assert extract_archive(archive) == legacy
    assert not (tmp_path / "user-cache").exists()


def test_python_release_errors(tmp_path: Path) -> None:
    folder = write_python_release(tmp_path)
    (folder / "data_batch_3").unlink()
    with pytest.raises(DatasetError, match="incomplete: data_batch_3 missing"):
        load_cifar10(folder)
    (folder / "data_batch_3").write_bytes(b"not a pickle at all")
    with pytest.raises(DatasetError, match="data_batch_3"):
        load_cifar10(folder)


def test_pickles_that_would_run_code_are_refused(tmp_path: Path) -> None:
    folder = write_python_release(tmp_path)

    class Evil:
        def __reduce__(self) -> tuple[object, ...]:
            return (print, ("owned",))

    (folder / "test_batch").write_bytes(pickle.dumps({b"data": Evil()}))
    with pytest.raises(DatasetError, match="not allowed"):
        load_cifar10(folder)


def test_image_folder_classes_sorted_and_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_tree(tmp_path / "tree")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    splits = load_image_folder(root)
    assert splits.classes == ("a", "b", "c")  # alphabetical, not creation order
    assert len(splits.train) == 9 and len(splits.test) == 6
    assert splits.train.images.shape == (9, 3, 6, 6)
    # class "a" was written with value 20 * 1, "b" with 0
    assert splits.train.images[splits.train.labels == 0, 1, 3, 3].unique().tolist() == [20]
    caches = list((tmp_path / "user-cache" / "nasforge" / "datasets").glob("tree-*.nasforge.npz"))
    assert len(caches) == 1 and caches[0].is_file()
    assert not list(tmp_path.glob("*.npz"))  # nothing next to the data

    def no_decoding(path: Path) -> np.ndarray:
        raise AssertionError(f"decoded {path} although the cache is valid")

    monkeypatch.setattr(readers_module, "_decode_one", no_decoding)
    again = load_image_folder(root)
    assert torch.equal(again.train.images, splits.train.images)
    monkeypatch.undo()
    write_tree(tmp_path / "other", classes=("z",), n=1)  # unrelated
    (root / "train" / "a" / "0000.png").unlink()  # the folder changed: decode again
    assert len(load_image_folder(root).train) == 8


def test_tarball_of_a_tree_is_extracted_once(tmp_path: Path) -> None:
    classes = CIFAR10_CLASSES
    root = write_tree(tmp_path / "src", classes=classes, n=1, size=4, suffix=".jpg")
    archive = tmp_path / "data" / "cifar10-jpeg.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root / "train", arcname="train")
        tar.add(root / "test", arcname="test")
    cache = tmp_path / "cache"
    archive.parent.chmod(0o555)  # a read-only folder: use the cache_dir
    try:
        splits = load_cifar10(archive, cache_dir=cache)
        assert len(splits.train) == 10 and splits.classes == classes
        extracted = [p for p in cache.iterdir() if p.is_dir()]
        assert len(extracted) == 1 and (extracted[0] / ".nasforge-extracted").is_file()
        assert list(cache.glob("*.npz"))
        stamp = (extracted[0] / ".nasforge-extracted").stat().st_mtime_ns
        assert extract_archive(archive, cache) == extracted[0]
        assert (extracted[0] / ".nasforge-extracted").stat().st_mtime_ns == stamp
    finally:
        archive.parent.chmod(0o755)


def test_unsafe_archive_member_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "evil.tar.gz"
    payload = tmp_path / "x.txt"
    payload.write_text("x")
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(payload, arcname="../escape.txt")
    with pytest.raises(DatasetError, match="outside the target folder"):
        load_cifar10(archive)
    assert not (tmp_path.parent / "escape.txt").exists()


def test_missing_data_says_where_to_put_it(tmp_path: Path) -> None:
    with pytest.raises(
        DatasetError, match=r"does not download.*cifar-10-batches-py.*train/<class>"
    ):
        load_cifar10(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="neither the CIFAR-10 python release"):
        load_cifar10(tmp_path / "empty")
    (tmp_path / "file.zip").write_bytes(b"PK")
    with pytest.raises(DatasetError, match=r"not a \.tar\.gz"):
        load_cifar10(tmp_path / "file.zip")


def test_wrong_layouts_name_what_is_missing(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "t1")
    for path in (root / "test").rglob("*"):
        if path.is_file():
            path.unlink()
    for folder in sorted((root / "test").iterdir()):
        folder.rmdir()
    (root / "test").rmdir()
    with pytest.raises(DatasetError, match="has no test/ folder"):
        load_image_folder(root)
    root = write_tree(tmp_path / "t2")
    (root / "test" / "c").rename(root / "test" / "d")
    with pytest.raises(DatasetError, match="only in train/: c; only in test/: d"):
        load_image_folder(root)
    root = write_tree(tmp_path / "t3")
    for path in (root / "train" / "b").iterdir():
        path.unlink()
    with pytest.raises(DatasetError, match=r"train/b' holds no images"):
        load_image_folder(root)
    root = write_tree(tmp_path / "t4", classes=("a", "b"))
    with pytest.raises(DatasetError, match=r"2 classes.*CIFAR-10 has 10"):
        load_cifar10(root)


def test_corrupt_or_odd_images_are_named(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "t")
    bad = root / "train" / "b" / "0001.png"
    bad.write_bytes(b"\x89PNG garbage")
    with pytest.raises(DatasetError, match=r"Cannot decode image .*train/b/0001.png"):
        load_image_folder(root, workers=1)
    root = write_tree(tmp_path / "u")
    Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(root / "test" / "a" / "0009.png")
    with pytest.raises(DatasetError, match=r"test/a/0009.png' is 9x9 pixels; the others are 6x6"):
        load_image_folder(root, workers=2)


def test_split_is_stratified_and_fixed_by_its_seed() -> None:
    data = SyntheticImages(num_classes=4, n_train=100, n_test=8, size=4).load().train
    train, valid = split_train_valid(data, 40, seed=3)
    assert len(train) == 60 and len(valid) == 40
    assert valid.class_counts() == [10, 10, 10, 10]
    _, again_valid = split_train_valid(data, 40, seed=3)
    assert torch.equal(valid.images, again_valid.images)
    other = split_train_valid(data, 40, seed=4)[1]
    assert not torch.equal(valid.images, other.images)
    together = torch.cat([train.images, valid.images]).flatten(1)
    assert len(torch.unique(together, dim=0)) == len(data)  # disjoint, nothing lost
    with pytest.raises(Exception, match="between 1 and 99"):
        split_train_valid(data, 100)


def test_stratified_indices_larger_counts_extend_smaller_ones() -> None:
    labels = torch.tensor([0] * 30 + [1] * 60 + [2] * 10)
    small = stratified_indices(labels, 10, seed=1)
    large = stratified_indices(labels, 20, seed=1)
    assert torch.bincount(labels[small], minlength=3).tolist() == [3, 6, 1]
    assert set(small.tolist()) <= set(large.tolist())


def test_synthetic_images_are_reproducible_and_balanced() -> None:
    a = SyntheticImages(num_classes=3, n_train=30, n_test=12, size=8, seed=2).load()
    b = SyntheticImages(num_classes=3, n_train=30, n_test=12, size=8, seed=2).load()
    assert torch.equal(a.train.images, b.train.images)
    assert a.train.class_counts() == [10, 10, 10] and a.test.class_counts() == [4, 4, 4]
    assert len(a.mean) == 3 and all(s > 0 for s in a.std)
    with pytest.raises(Exception, match="at least 2 classes"):
        SyntheticImages(num_classes=1)


def test_image_data_checks_its_tensors() -> None:
    with pytest.raises(DatasetError, match="uint8"):
        ImageData(torch.zeros((2, 3, 4, 4)), torch.zeros(2, dtype=torch.long), ("a",))
    with pytest.raises(DatasetError, match=r"labels must be in 0\.\.0"):
        ImageData(torch.zeros((2, 3, 4, 4), dtype=torch.uint8), torch.tensor([0, 1]), ("a",))

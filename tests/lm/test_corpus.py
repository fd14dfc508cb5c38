"""Byte corpora: the default package corpus, user text, splits, batches and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nasforge.errors import InvalidConfigError
from nasforge.lm.corpus import load_corpus, package_sources


def test_default_corpus_is_the_package_source_in_order() -> None:
    first, second = load_corpus(), load_corpus()
    assert np.array_equal(first.train, second.train)
    assert np.array_equal(first.valid, second.valid)
    files = package_sources()
    assert [str(f) for f in files] == list(first.files) and files == sorted(files)
    assert first.sources is None and first.settings == {"paths": None, "valid_fraction": 0.1}
    text = b"".join(f.read_bytes() + b"\n" for f in files)
    assert bytes(first.valid) == text[len(first.train) :]  # held out by position: the end
    assert abs(len(first.valid) / len(text) - 0.1) < 1e-3


def test_user_files_and_folders(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("hello world\n" * 20)
    sub = tmp_path / "docs"
    sub.mkdir()
    (sub / "b.md").write_text("second file\n" * 20)
    (sub / "skip.bin").write_bytes(b"\x00\x01")  # not a text suffix: not read from a folder
    corpus = load_corpus([tmp_path], valid_fraction=0.25)
    assert [Path(f).name for f in corpus.files] == ["a.txt", "b.md"]
    assert bytes(corpus.valid).endswith(b"second file\n\n")
    one = load_corpus(tmp_path / "a.txt")
    assert len(one.train) + len(one.valid) == 12 * 20 + 1


def test_batches_and_windows() -> None:
    corpus = load_corpus()
    x, y = corpus.batch("train", 4, 16, np.random.default_rng(0))
    assert x.shape == y.shape == (4, 16) and x.dtype == np.int64
    assert np.array_equal(x[:, 1:], y[:, :-1])
    again = corpus.batch("train", 4, 16, np.random.default_rng(0))
    assert np.array_equal(again[0], x)
    windows = list(corpus.windows("valid", 16, max_windows=3))
    assert len(windows) == 3 and np.array_equal(windows[1][0], corpus.valid[16:32])


def test_bad_corpus_paths(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfigError, match="does not exist"):
        load_corpus(tmp_path / "missing.txt")
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    with pytest.raises(InvalidConfigError, match="holds no text file"):
        load_corpus(empty_dir)
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(InvalidConfigError, match="is empty"):
        load_corpus(tmp_path / "empty.txt")
    (tmp_path / "binary.dat").write_bytes(b"abc\x00def")
    with pytest.raises(InvalidConfigError, match="NUL bytes"):
        load_corpus(tmp_path / "binary.dat")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(InvalidConfigError, match="not UTF-8"):
        load_corpus(tmp_path / "latin1.txt")
    with pytest.raises(InvalidConfigError, match="valid_fraction"):
        load_corpus(valid_fraction=1.0)


def test_sequence_longer_than_the_split(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x" * 50)
    corpus = load_corpus(tmp_path / "a.txt", valid_fraction=0.2)
    with pytest.raises(InvalidConfigError, match="at least 17 bytes in the valid split"):
        list(corpus.windows("valid", 16))
    with pytest.raises(InvalidConfigError, match="split is one of"):
        corpus.split("test")

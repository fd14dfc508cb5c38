"""Byte-level text corpora for the language models of the ``llm`` space, created without any
download.

The default corpus is nasforge's own source: every ``.py`` file of the installed package, in
sorted path order (the same bytes on every machine with the same nasforge version). A user
gives their own text instead: files (read whatever their name) and folders (their files with
a text suffix, :data:`TEXT_SUFFIXES`, recursively, in sorted order). The bytes of all files
are concatenated (each file followed by a newline) and split by position: the last
``valid_fraction`` of the bytes is the held-out (validation) split, the rest the training
split. Tokens are the bytes themselves (vocabulary 256), so any UTF-8 text is covered.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nasforge.errors import InvalidConfigError

__all__ = ["SPLITS", "TEXT_SUFFIXES", "ByteCorpus", "load_corpus", "package_sources"]

#: File suffixes read from a folder.
TEXT_SUFFIXES = (".txt", ".md", ".rst", ".py", ".json", ".toml", ".csv", ".tex", ".html")
#: The splits of a corpus.
SPLITS = ("train", "valid")


def package_sources() -> list[Path]:
    """The ``.py`` files of the installed nasforge package, in sorted order (the default
    corpus)."""
    import nasforge

    root = Path(nasforge.__file__).parent
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def _read_text(path: Path) -> bytes:
    """The bytes of ``path``, refused when they are not text."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InvalidConfigError(f"Cannot read corpus file {str(path)!r}: {error}.") from None
    if b"\x00" in data:
        raise InvalidConfigError(
            f"Corpus file {str(path)!r} holds NUL bytes, so it is not text (a binary file?); "
            "give UTF-8 text files."
        )
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidConfigError(
            f"Corpus file {str(path)!r} is not UTF-8 text (byte {error.start} cannot be "
            "decoded); convert it to UTF-8 or leave it out."
        ) from None
    return data


def _files(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    out: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix.lower() in TEXT_SUFFIXES
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not found:
                raise InvalidConfigError(
                    f"Corpus folder {str(raw)!r} holds no text file (suffixes "
                    f"{', '.join(TEXT_SUFFIXES)}); give a folder with text files, or the files."
                )
            out.extend(found)
        elif path.is_file():
            out.append(path)
        else:
            raise InvalidConfigError(
                f"Corpus path {str(raw)!r} does not exist; give text files or folders of them."
            )
    return out


@dataclass(frozen=True)
class ByteCorpus:
    """Bytes of text split by position into a training and a held-out part.

    Attributes:
        train: Training bytes (``uint8``).
        valid: Held-out bytes (``uint8``), the end of the text.
        sources: The files read, in order (``None``: the default package corpus).
        valid_fraction: The held-out share.
    """

    train: np.ndarray
    valid: np.ndarray
    sources: tuple[str, ...] | None = None
    valid_fraction: float = 0.1
    files: tuple[str, ...] = field(default=(), compare=False)

    @property
    def settings(self) -> dict[str, Any]:
        """The keywords of :func:`load_corpus` that rebuild this corpus (JSON-able)."""
        return {"paths": None if self.sources is None else list(self.sources),
                "valid_fraction": self.valid_fraction}  # fmt: skip

    @property
    def digest(self) -> str:
        """A fingerprint of the text (SHA-256 of both parts, 16 hex digits): a folder trained
        on a corpus records it, so that text changed since (an edited file, another version
        of nasforge for the default corpus) is noticed instead of silently used."""
        hasher = hashlib.sha256(self.train.tobytes())
        hasher.update(self.valid.tobytes())
        return hasher.hexdigest()[:16]

    def split(self, name: str) -> np.ndarray:
        """The bytes of split ``name`` (``"train"`` or ``"valid"``)."""
        if name == "train":
            return self.train
        if name == "valid":
            return self.valid
        raise InvalidConfigError(f"A corpus split is one of {SPLITS}, got {name!r}.")

    def check_length(self, seq_len: int, split: str = "train") -> None:
        """Refuse sequences that do not fit in ``split`` (a window is ``seq_len + 1`` bytes:
        the inputs and their next bytes)."""
        size = len(self.split(split))
        if seq_len < 1 or seq_len + 1 > size:
            raise InvalidConfigError(
                f"Sequences of {seq_len} tokens need at least {seq_len + 1} bytes in the "
                f"{split} split, which holds {size}; use a shorter sequence or more text."
            )

    def batch(
        self, split: str, batch_size: int, seq_len: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """``batch_size`` windows at random offsets drawn with ``rng``: inputs and targets
        (the next bytes), each ``(batch_size, seq_len)`` int64."""
        self.check_length(seq_len, split)
        data = self.split(split)
        starts = rng.integers(0, len(data) - seq_len, size=batch_size)
        index = starts[:, None] + np.arange(seq_len + 1)[None, :]
        windows = data[index].astype(np.int64)
        return windows[:, :-1], windows[:, 1:]

    def windows(
        self, split: str, seq_len: int, *, max_windows: int | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The split cut into consecutive non-overlapping windows of ``seq_len`` inputs (and
        their next bytes), in order, at most ``max_windows``; the remainder is dropped."""
        self.check_length(seq_len, split)
        data = self.split(split)
        count = (len(data) - 1) // seq_len
        if max_windows is not None:
            count = min(count, int(max_windows))
        for i in range(count):
            chunk = data[i * seq_len : (i + 1) * seq_len + 1].astype(np.int64)
            yield chunk[:-1], chunk[1:]


def load_corpus(
    paths: Sequence[str | os.PathLike[str]] | str | os.PathLike[str] | None = None,
    *,
    valid_fraction: float = 0.1,
) -> ByteCorpus:
    """A byte corpus of ``paths`` (files and folders), or of nasforge's own source when
    ``None`` (see the module docstring).

    Args:
        paths: Text files or folders of them; ``None`` for the default corpus.
        valid_fraction: Share of the bytes held out, taken from the end.

    Raises:
        InvalidConfigError: A path that does not exist, a folder without text files, an
            empty corpus, a file that is not UTF-8 text (NUL bytes or undecodable), or a
            ``valid_fraction`` outside (0, 1).

    Example:
        >>> corpus = load_corpus()
        >>> len(corpus.train) > 8 * len(corpus.valid) > 0
        True
    """
    if not 0.0 < float(valid_fraction) < 1.0:
        raise InvalidConfigError(
            f"valid_fraction is the held-out share of the text, in (0, 1); got {valid_fraction!r}."
        )
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files = package_sources() if paths is None else _files(list(paths))
    if not files:
        raise InvalidConfigError("No corpus files were given; give text files or folders.")
    text = b"".join(_read_text(f) + b"\n" for f in files)
    if not text.strip():
        raise InvalidConfigError(
            f"The corpus ({', '.join(str(f) for f in files[:3])}...) is empty; give files "
            "with text in them."
        )
    data = np.frombuffer(text, dtype=np.uint8)
    cut = len(data) - max(1, round(len(data) * float(valid_fraction)))
    sources = None if paths is None else tuple(str(Path(p).expanduser()) for p in paths)
    return ByteCorpus(
        train=data[:cut],
        valid=data[cut:],
        sources=sources,
        valid_fraction=float(valid_fraction),
        files=tuple(str(f) for f in files),
    )

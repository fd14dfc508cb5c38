"""Default study names and checkpoint folders."""

from __future__ import annotations

from nasforge.naming import default_checkpoint_dir, default_study_name


def test_study_names() -> None:
    assert default_study_name("nb201", "random", "cifar10", seed=3) == "nb201-random-cifar10-seed3"
    trained = default_study_name("darts", "random", "folder", seed=0, evaluator="train")
    assert trained == "darts-random-train-folder-seed0"


def test_checkpoint_folders_only_next_to_a_sqlite_file() -> None:
    assert default_checkpoint_dir("sqlite:///a/b.db?mode=rw", "s") == "a/b.db-checkpoints/s"
    assert default_checkpoint_dir("sqlite:////abs/b.db", "s") == "/abs/b.db-checkpoints/s"
    assert default_checkpoint_dir("sqlite:///:memory:", "s") is None
    assert default_checkpoint_dir("postgresql+psycopg://u@h/db", "s") is None
    assert default_checkpoint_dir(None, "s") is None
    assert default_checkpoint_dir("sqlite:///b.db", None) is None

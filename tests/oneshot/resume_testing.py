"""One search run whole and the same run interrupted then resumed, for the resume tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nasforge import oneshot
from nasforge.oneshot import _engine


def whole_and_resumed(
    name: str, data: Any, tmp_path: Path, *, stop_after: int, **search: Any
) -> tuple[Any, Any, dict[str, Any], dict[str, Any]]:
    """Run ``oneshot.search(name, data, **search)`` to the end in one folder, and in another
    stop it (KeyboardInterrupt) once ``stop_after`` trials are recorded, then resume it.

    Returns the whole run's result, the resumed run's result and the last checkpoint of each.
    """

    def run(folder: Path, stop: int | None = None) -> Any:
        folder.mkdir(exist_ok=True)

        def interrupt(study: Any, trial: Any) -> None:
            if stop is not None and len(study.trials) == stop:
                raise KeyboardInterrupt

        return oneshot.search(
            name,
            data,
            device="cpu",
            storage=f"sqlite:///{folder}/s.db",
            study_name="s",
            checkpoint_dir=folder,
            callbacks=[interrupt],
            **search,
        )

    whole = run(tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b", stop_after)
    resumed = run(tmp_path / "b")
    return (
        whole,
        resumed,
        _engine.load_checkpoint(tmp_path / "a" / "oneshot.pt"),
        _engine.load_checkpoint(tmp_path / "b" / "oneshot.pt"),
    )

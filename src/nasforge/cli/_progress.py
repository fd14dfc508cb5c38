"""Progress bars on stderr, fed by the callbacks of :func:`nasforge.runs.run_search`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nasforge.cli._common import console, fmt, progress_bar
from nasforge.runs.search import SearchProgress

if TYPE_CHECKING:
    from nasforge.architecture import Architecture
    from nasforge.study import Study
    from nasforge.train.trainer import EpochReport
    from nasforge.trial import Trial


class SearchBars(SearchProgress):
    """One bar over the trials (or the cost) with the best value so far; for an evaluator
    that trains, a second bar over the epochs of the trial being trained. Call :meth:`stop`
    when the search ends."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._search: Any = None
        self._epochs: Any = None
        self._metric = ""

    def _best(self, trial: Trial | None) -> str:
        return "–" if trial is None else fmt(trial.metrics.get(self._metric))

    def start(
        self,
        study: Study,
        *,
        by_trials: bool,
        total: float | None,
        completed: float,
        best: Trial | None,
        epochs: bool,
    ) -> None:
        from rich.progress import TextColumn

        self._metric = study.objectives[0].metric
        if not epochs:
            self._bar = progress_bar(study.strategy_name, TextColumn("best {task.fields[best]}"))
            self._search = self._bar.add_task(
                study.strategy_name, total=total, completed=completed, best=self._best(best)
            )
        else:
            self._bar = _two_bars()
            self._search = self._bar.add_task(
                "trials" if by_trials else "seconds",
                total=total,
                completed=completed,
                info=f"best {self._best(best)}",
            )
            self._epochs = self._bar.add_task("epochs", total=1, info="", visible=False)
        self._bar.start()

    def trial(self, study: Study, trial: Trial, *, advance: float, is_best: bool) -> None:
        if is_best:
            best = self._best(trial)
            fields = {"info": f"best {best}"} if self._epochs is not None else {"best": best}
            self._bar.update(self._search, **fields)
        self._bar.update(self._search, advance=advance)

    def epoch(self, study: Study, arch: Architecture, report: EpochReport) -> None:
        if report.epoch == 0:
            label = f"trial {len(study.trials) - 1}"
            self._bar.reset(self._epochs, total=report.epochs, description=label, info="")
            self._bar.update(self._epochs, visible=True)
        else:
            info = f"loss {report.train_loss:.3f} acc {report.train_acc:.1f}"
            self._bar.update(self._epochs, completed=report.epoch, info=info)

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def _two_bars() -> Any:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console(stderr=True),
    )

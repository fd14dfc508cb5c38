"""Reading and checking a benchmark table of one's own: its recordable settings
(:func:`table_params`), the parsed table (:class:`TableData`: decisions, architectures and
metric arrays) and the checks that name what is wrong with a table. The space and the
benchmark built on it are in :mod:`nasforge.tabular.table` and :mod:`nasforge.spaces.table`.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nasforge.architecture import Architecture
from nasforge.errors import InvalidArchitectureError, InvalidConfigError, MissingDependencyError
from nasforge.spaces.base import Decision
from nasforge.trial import Direction

__all__ = [
    "DEFAULT_DATASET",
    "EXAMPLE_TABLE",
    "SUFFIXES",
    "FromTable",
    "TableData",
    "load",
    "table_params",
]

logger = logging.getLogger(__name__)

#: The file types read, by suffix.
SUFFIXES = (".csv", ".csv.gz", ".tsv", ".parquet", ".pq")
#: The dataset of a table without a dataset column.
DEFAULT_DATASET = "table"
#: The made-up example table shipped with nasforge (500 architectures, 2 fidelities), used
#: when no table is named (see :mod:`nasforge.tabular.table_example`).
EXAMPLE_TABLE = "example_table.csv"
_EXAMPLE_SETTINGS: dict[str, Any] = {
    "metrics": {"valid_acc": "max", "test_acc": "max", "params_M": "min", "train_seconds": "min"},
    "fidelity": "epochs",
    "free": ["params_M"],
}

#: DataFrames given in this process, by content hash (see :func:`table_params`).
_FRAMES: dict[str, Any] = {}
#: Parsed tables, by settings and file stamp.
_LOADED: dict[tuple[Any, ...], TableData] = {}


# -- settings ---------------------------------------------------------------------------------
def table_params(
    source: Any = None,
    *,
    arch_columns: Sequence[str] | None = None,
    metrics: Sequence[str] | Mapping[str, str] | None = None,
    fidelity: str | None = None,
    cost: str | None = None,
    dataset: str | None = None,
    free: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The recordable settings of a table (the keyword arguments of :class:`TableBenchmark`
    and of the ``"table"`` space), in one canonical form.

    ``source`` is a path (made absolute), a pandas DataFrame (kept in this process under
    ``"frame:<content hash>"``) or ``None`` (the example table). ``metrics`` maps each metric
    column to ``"max"`` or ``"min"``, or lists ``"name:max"``/``"name:min"``/``"name"`` (a
    bare name is maximised).
    """
    given = (arch_columns, metrics, fidelity, cost, dataset, free)
    if source is None and all(v is None for v in given):
        return _canonical({"path": None, **_EXAMPLE_SETTINGS})
    if source is None:
        path = None
    elif isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        path = text if text.startswith("frame:") else str(Path(text).expanduser().resolve())
    elif hasattr(source, "columns") and hasattr(source, "to_numpy"):
        path = _keep_frame(source)
    else:
        raise InvalidConfigError(
            f"A table is a path (CSV or Parquet) or a pandas DataFrame, got "
            f"{type(source).__name__}."
        )
    return _canonical(
        {
            "path": path,
            "arch_columns": arch_columns,
            "metrics": metrics,
            "fidelity": fidelity,
            "cost": cost,
            "dataset": dataset,
            "free": free,
        }
    )


def _canonical(raw: Mapping[str, Any]) -> dict[str, Any]:
    def names(value: Any, what: str) -> list[str] | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = [value]
        out = [str(v) for v in value]
        if len(set(out)) != len(out):
            raise InvalidConfigError(f"{what} lists a column twice: {out}.")
        return out

    def column(value: Any, what: str) -> str | None:
        if value is None or isinstance(value, str):
            return value
        raise InvalidConfigError(f"{what} names one column (a string), got {value!r}.")

    return {
        "path": raw.get("path"),
        "arch_columns": names(raw.get("arch_columns"), "arch_columns"),
        "metrics": _metric_directions(raw.get("metrics")),
        "fidelity": column(raw.get("fidelity"), "fidelity"),
        "cost": column(raw.get("cost"), "cost"),
        "dataset": column(raw.get("dataset"), "dataset"),
        "free": names(raw.get("free"), "free") or [],
    }


def _metric_directions(metrics: Any) -> dict[str, str] | None:
    if metrics is None:
        return None
    if isinstance(metrics, str):
        metrics = [metrics]
    pairs: list[tuple[str, str]] = []
    if isinstance(metrics, Mapping):
        pairs = [(str(k), str(v)) for k, v in metrics.items()]
    else:
        for item in metrics:
            name, colon, direction = str(item).rpartition(":")
            if not colon or direction not in ("max", "min"):
                name, direction = str(item), "max"
            pairs.append((name, direction))
    out: dict[str, str] = {}
    for name, direction in pairs:
        if direction not in ("max", "min"):
            raise InvalidConfigError(
                f"The direction of metric {name!r} must be 'max' or 'min', got {direction!r}."
            )
        if name in out:
            raise InvalidConfigError(f"metrics lists the column {name!r} twice.")
        out[name] = direction
    if not out:
        raise InvalidConfigError("metrics is empty; name at least one metric column.")
    return out


def _keep_frame(frame: Any) -> str:
    import pandas as pd

    digest = hashlib.sha256()
    digest.update(repr(list(frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    key = f"frame:{digest.hexdigest()[:16]}"
    _FRAMES[key] = frame.copy()
    return key


# -- the parsed table -------------------------------------------------------------------------
@dataclass(eq=False)
class TableData:
    """A table read and checked: its architectures, decisions and metric arrays.

    Attributes:
        source: The file name (or ``"DataFrame"``) for messages.
        decisions: One per architecture column; options are the column's distinct values.
        choices: ``(n_archs, n_decisions)`` option indices, in the order rows first appear.
        texts: The text of each architecture (``"col=value,col=value"``).
        datasets: The datasets (the dataset column's values, else ``("table",)``).
        fidelities: The fidelity column's values, highest first (``()`` without one).
        directions: Each metric's direction.
        values: ``values[metric][dataset, fidelity, arch]`` (NaN where the table has no row).
        cost: Seconds of each row, in the same shape (``None`` without a cost column).
    """

    source: str
    settings: dict[str, Any]
    decisions: tuple[Decision, ...]
    choices: np.ndarray
    texts: tuple[str, ...]
    index: dict[str, int]
    datasets: tuple[str, ...]
    fidelities: tuple[int | float, ...]
    directions: dict[str, Direction]
    values: dict[str, np.ndarray]
    cost: np.ndarray | None

    def nearest(self, choices: Sequence[int]) -> int:
        """The row of ``choices``, or the nearest row (fewest decisions differing; the first
        in table order among equals)."""
        distance = np.count_nonzero(self.choices != np.asarray(choices, dtype=np.int64), axis=1)
        return int(np.argmin(distance))

    def row(self, text: str) -> int:
        """The index of the architecture written ``text`` (the order its rows first appear)."""
        row = self.index.get(text)
        if row is None:
            raise InvalidArchitectureError(
                f"Architecture {text!r} is not a row of the table {self.source}."
            )
        return row

    def arch(self, space: str, row: int) -> Architecture:
        return Architecture(space, tuple(int(c) for c in self.choices[row]), self.texts[row])


class FromTable:
    """What the ``"table"`` space and benchmark share: both are built from the same settings
    (those of :func:`table_params`, kept as :attr:`params`, a study's ``space_params``) and
    hold the table they describe (:attr:`data`). A subclass reads what else it needs from
    the table in :meth:`_loaded`.

    Args:
        path, arch_columns, metrics, fidelity, cost, dataset, free: The table and its
            columns (see :class:`nasforge.tabular.table.TableBenchmark`).
    """

    params: dict[str, Any]
    data: TableData

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        arch_columns: Sequence[str] | None = None,
        metrics: Sequence[str] | Mapping[str, str] | None = None,
        fidelity: str | None = None,
        cost: str | None = None,
        dataset: str | None = None,
        free: Sequence[str] | None = None,
    ) -> None:
        self.params = table_params(
            path,
            arch_columns=arch_columns,
            metrics=metrics,
            fidelity=fidelity,
            cost=cost,
            dataset=dataset,
            free=free,
        )
        self.data = load(self.params)
        self._loaded()

    def _loaded(self) -> None:
        """Called once :attr:`params` and :attr:`data` are set."""


def load(settings: Mapping[str, Any]) -> TableData:
    """The table described by ``settings`` (:func:`table_params`), read once per process and
    file version."""
    settings = _canonical(settings)
    path = settings["path"]
    stamp: Any = None
    if path is not None and not str(path).startswith("frame:"):
        file = Path(path)
        if file.is_file():
            info = file.stat()
            stamp = (info.st_mtime_ns, info.st_size)
    key = (repr(sorted(settings.items())), stamp)
    data = _LOADED.get(key)
    if data is None:
        data = _LOADED[key] = _parse(_read(path), settings, _source(path))
    return data


def _source(path: str | None) -> str:
    if path is None:
        return f"{EXAMPLE_TABLE} (nasforge's example)"
    if path.startswith("frame:"):
        return "<DataFrame>"
    return Path(path).name


def _read(path: str | None) -> Any:
    try:
        import pandas as pd
    except ImportError as exc:
        raise MissingDependencyError(
            "Reading a benchmark table needs pandas: pip install 'nasforge[pandas]'."
        ) from exc
    if path is None:
        from importlib import resources

        with resources.as_file(
            resources.files("nasforge.tabular").joinpath("data").joinpath(EXAMPLE_TABLE)
        ) as real:
            return pd.read_csv(real)
    if path.startswith("frame:"):
        if path not in _FRAMES:
            raise InvalidConfigError(
                f"The table {path} was a pandas DataFrame of another process; a DataFrame lives "
                "only in the process that made it. Save it (df.to_parquet('table.parquet')) and "
                "give the path."
            )
        return _FRAMES[path]
    file = Path(path)
    suffix = next((s for s in SUFFIXES if file.name.lower().endswith(s)), None)
    if suffix is None:
        raise InvalidConfigError(
            f"Unknown table file type {file.name!r}; nasforge reads {', '.join(SUFFIXES)} "
            "(convert it, e.g. with pandas: df.to_parquet('table.parquet'))."
        )
    if not file.is_file():
        raise InvalidConfigError(
            f"No benchmark table at {file}; give the path of a CSV or Parquet file."
        )
    try:
        if suffix in (".parquet", ".pq"):
            try:
                return pd.read_parquet(file)
            except ImportError as exc:
                raise MissingDependencyError(
                    "Reading a Parquet table needs pyarrow: pip install 'nasforge[pandas]'."
                ) from exc
        return pd.read_csv(file, sep="\t" if suffix == ".tsv" else ",")
    except pd.errors.EmptyDataError:
        raise InvalidConfigError(f"The table {file.name} is empty (no columns, no rows).") from None
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise InvalidConfigError(f"Cannot read the table {file.name}: {exc}") from None


def _listed(values: Sequence[Any], limit: int = 8) -> str:
    shown = ", ".join(map(str, values[:limit]))
    return shown + (f", ... ({len(values)} in all)" if len(values) > limit else "")


def _parse(frame: Any, settings: Mapping[str, Any], source: str) -> TableData:
    import pandas as pd

    columns = [str(c) for c in frame.columns]
    frame = frame.set_axis(columns, axis=1)
    if not columns or len(frame) == 0:
        raise InvalidConfigError(
            f"The table {source} is empty ({len(frame)} rows, columns {columns}); it needs one "
            "row per architecture."
        )
    special = {k: settings[k] for k in ("fidelity", "cost", "dataset") if settings[k] is not None}
    for role, name in special.items():
        if name not in columns:
            raise InvalidConfigError(
                f"The {role} column {name!r} is not in the table {source}; its columns are "
                f"{columns}."
            )
    metrics: dict[str, str] | None = settings["metrics"]
    arch_columns: list[str] | None = settings["arch_columns"]
    for what, wanted in (("metric", list(metrics or {})), ("architecture", arch_columns or [])):
        missing = [c for c in wanted if c not in columns]
        if missing:
            raise InvalidConfigError(
                f"The table {source} has no {what} column(s) {missing}; its columns are "
                f"{columns}. Name the columns as they are spelled in the table."
            )
    side = {special.get("fidelity"), special.get("dataset")} - {None}
    if metrics is None and arch_columns is None:
        raise InvalidConfigError(
            f"Say which columns of the table {source} are metrics (metrics=['valid_acc:max', "
            f"...]) or which describe the architecture (arch_columns=[...]); its columns are "
            f"{columns}."
        )
    if metrics is None:
        metrics = {c: "max" for c in columns if c not in arch_columns and c not in side}  # type: ignore[operator]
    if arch_columns is None:
        excluded = set(metrics) | side | ({special["cost"]} if "cost" in special else set())
        arch_columns = [c for c in columns if c not in excluded]
        measured = [c for c in arch_columns if pd.api.types.is_float_dtype(frame[c])]
        if measured:
            logger.warning(
                "Column(s) %s of the table %s are taken as architecture columns (they are not "
                "among the metrics) but hold decimal numbers; if they are measurements, name "
                "them in metrics=, cost= or free=, or give arch_columns=.",
                measured,
                source,
            )
    both = sorted(set(arch_columns) & (set(metrics) | side))
    if both:
        raise InvalidConfigError(
            f"Column(s) {both} of the table {source} are named both as architecture columns "
            "and as metric, fidelity or dataset columns; each column has one role."
        )
    if not arch_columns:
        raise InvalidConfigError(
            f"The table {source} has no column left to describe the architectures (columns "
            f"{columns}, metrics {list(metrics)}); name them with arch_columns=[...]."
        )
    if not metrics:
        raise InvalidConfigError(
            f"The table {source} has no metric column (columns {columns}); name them with "
            "metrics=[...]."
        )
    free = [f for f in settings["free"] if f not in metrics]
    if free:
        raise InvalidConfigError(
            f"free names {free}, which are not metric columns of the table {source} "
            f"({list(metrics)}); free metrics are metric columns known without training."
        )
    for name in arch_columns + [c for c in side]:
        blank = np.flatnonzero(frame[name].isna().to_numpy())
        if len(blank):
            raise InvalidConfigError(
                f"Column {name!r} of the table {source} has no value in row(s) "
                f"{_listed(blank.tolist())}; every row needs its architecture (fill an absent "
                "choice with a value of its own, e.g. 'none')."
            )
    numeric: dict[str, np.ndarray] = {}
    for name in [*metrics, *([special["cost"]] if "cost" in special else [])]:
        raw = frame[name]
        converted = pd.to_numeric(raw, errors="coerce")
        bad = np.flatnonzero((converted.isna() & raw.notna()).to_numpy())
        if len(bad):
            examples = [repr(raw.iloc[i]) for i in bad[:3]]
            raise InvalidConfigError(
                f"Metric column {name!r} of the table {source} holds values that are not "
                f"numbers in row(s) {_listed(bad.tolist())} (e.g. {', '.join(examples)}); "
                "metrics must be numbers (empty cells are missing values)."
            )
        numeric[name] = converted.to_numpy(dtype=np.float64)
    if "cost" in special:
        seconds = numeric[special["cost"]]
        bad = np.flatnonzero(~(seconds > 0))
        if len(bad):
            raise InvalidConfigError(
                f"Cost column {special['cost']!r} of the table {source} must hold a positive "
                f"cost in every row; row(s) {_listed(bad.tolist())} do not."
            )
    decisions, codes = [], []
    for name in arch_columns:
        options, code = _options(frame[name])
        decisions.append(Decision(name, options))
        codes.append(code)
    arch_codes = np.stack(codes, axis=1)
    if "fidelity" in special:
        fid_raw = pd.to_numeric(frame[special["fidelity"]], errors="coerce").to_numpy(float)
        if np.isnan(fid_raw).any():
            bad = np.flatnonzero(np.isnan(fid_raw))
            raise InvalidConfigError(
                f"Fidelity column {special['fidelity']!r} of the table {source} holds values "
                f"that are not numbers in row(s) {_listed(bad.tolist())}."
            )
        fid_values = sorted({_number(v) for v in fid_raw}, reverse=True)
        fid_code = np.array([fid_values.index(_number(v)) for v in fid_raw], dtype=np.int64)
    else:
        fid_values, fid_code = [], np.zeros(len(frame), dtype=np.int64)
    if "dataset" in special:
        labels = [str(v) for v in frame[special["dataset"]].tolist()]
        datasets = tuple(dict.fromkeys(labels))
        data_code = np.array([datasets.index(v) for v in labels], dtype=np.int64)
    else:
        datasets, data_code = (DEFAULT_DATASET,), np.zeros(len(frame), dtype=np.int64)
    archs, first, arch_of_row = np.unique(
        arch_codes, axis=0, return_index=True, return_inverse=True
    )
    arch_of_row = np.asarray(arch_of_row).reshape(-1)
    # number architectures by their first row, so that table order breaks ties
    order = np.argsort(first, kind="stable")
    renumber = np.empty_like(order)
    renumber[order] = np.arange(len(order))
    arch_of_row = renumber[arch_of_row]
    archs = archs[order]
    key = (data_code * (len(fid_values) or 1) + fid_code) * len(archs) + arch_of_row
    _refuse_duplicates(key, frame, arch_columns, special, source)
    shape = (len(datasets), max(1, len(fid_values)), len(archs))

    def spread(column: np.ndarray) -> np.ndarray:
        out = np.full(shape, np.nan)
        out[data_code, fid_code, arch_of_row] = column
        out.setflags(write=False)
        return out

    texts = tuple(
        ",".join(f"{d.name}={d.options[c]}" for d, c in zip(decisions, row, strict=True))
        for row in archs.tolist()
    )
    archs.setflags(write=False)
    return TableData(
        source=source,
        settings={**settings, "metrics": dict(metrics), "arch_columns": list(arch_columns)},
        decisions=tuple(decisions),
        choices=archs,
        texts=texts,
        index={t: i for i, t in enumerate(texts)},
        datasets=datasets,
        fidelities=tuple(fid_values),
        directions={
            m: Direction.MAXIMIZE if d == "max" else Direction.MINIMIZE for m, d in metrics.items()
        },
        values={m: spread(numeric[m]) for m in metrics},
        cost=spread(numeric[special["cost"]]) if "cost" in special else None,
    )


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


def _options(column: Any) -> tuple[tuple[str | int | float | bool, ...], np.ndarray]:
    """The distinct values of an architecture column (numbers ascending, else sorted as
    text) as plain Python values, and each row's option index."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(column):
        values: list[Any] = [bool(v) for v in column]
    elif pd.api.types.is_integer_dtype(column):
        values = [int(v) for v in column]
    elif pd.api.types.is_float_dtype(column):
        values = [_number(v) for v in column]
    else:
        values = [str(v) for v in column]
    options = tuple(sorted(set(values)))
    position = {v: i for i, v in enumerate(options)}
    return options, np.array([position[v] for v in values], dtype=np.int64)


def _refuse_duplicates(
    key: np.ndarray,
    frame: Any,
    arch_columns: Sequence[str],
    special: Mapping[str, str],
    source: str,
) -> None:
    _, first, counts = np.unique(key, return_index=True, return_counts=True)
    if np.all(counts == 1):
        return
    repeated = first[counts > 1]
    row = int(repeated.min())
    same = np.flatnonzero(key == key[row]).tolist()
    described = ", ".join(f"{c}={frame[c].iloc[row]}" for c in arch_columns)
    extra = "".join(
        f", {special[r]}={frame[special[r]].iloc[row]}"
        for r in ("fidelity", "dataset")
        if r in special
    )
    raise InvalidConfigError(
        f"The table {source} holds the architecture {described}{extra} more than once (rows "
        f"{_listed(same)}; {int((counts > 1).sum())} architecture(s) are repeated). A benchmark "
        "table has one row per architecture (per fidelity and dataset): average the repeats "
        "(df.groupby(columns).mean()) or keep one, or name the column that tells them apart "
        "(fidelity=, dataset= or arch_columns=)."
    )

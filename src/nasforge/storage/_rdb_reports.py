"""The intermediate reports of :class:`~nasforge.storage.rdb.RDBStorage` (table
``nasforge_reports``, schema 3): one row per trial and step, the metrics as JSON."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from nasforge.storage import _rows

__all__ = ["RDBReports"]


class RDBReports:
    """``add_reports`` and ``get_reports`` of the relational storage (a mixin: it uses the
    storage's tables, transactions and study cache)."""

    _tables: dict[str, Any]
    _display: str
    _run: Callable[[Any], Any]
    _study: Callable[[int], tuple[str, str]]
    _writable: Callable[[str], None]

    def add_reports(
        self, study_id: int, number: int, reports: Mapping[int, Mapping[str, float]]
    ) -> None:
        """See :meth:`Storage.add_reports` (one transaction; a step stored before is
        replaced)."""
        self._writable("store intermediate reports")
        if not reports:
            return
        table = self._tables["reports"]
        rows = [
            {
                "study_id": study_id,
                "number": int(number),
                "step": int(step),
                "metrics": _rows.dumps({str(k): float(v) for k, v in values.items()}),
            }
            for step, values in reports.items()
        ]

        def write(conn: Any) -> None:
            conn.execute(
                table.delete().where(
                    table.c.study_id == study_id,
                    table.c.number == int(number),
                    table.c.step.in_([r["step"] for r in rows]),
                )
            )
            conn.execute(table.insert(), rows)

        self._study(study_id)
        self._run(write)

    def get_reports(
        self, study_id: int, numbers: Iterable[int] | None = None
    ) -> dict[int, dict[int, dict[str, float]]]:
        """See :meth:`Storage.get_reports`.

        Raises:
            StorageError: A stored report is damaged (its metrics are not a JSON object of
                numbers); the message names the trial and step and the SQL that deletes it.
        """
        import sqlalchemy as sa

        table = self._tables["reports"]
        name, _ = self._study(study_id)
        query = (
            sa.select(table.c.number, table.c.step, table.c.metrics)
            .where(table.c.study_id == study_id)
            .order_by(table.c.number, table.c.step)
        )
        if numbers is not None:
            query = query.where(table.c.number.in_([int(n) for n in numbers]))
        rows = self._run(lambda c: c.execute(query).all())
        out: dict[int, dict[int, dict[str, float]]] = {}
        for number, step, metrics in rows:
            out.setdefault(int(number), {})[int(step)] = _rows.decode_report(
                metrics,
                study=name,
                study_id=study_id,
                number=number,
                step=step,
                display=self._display,
            )
        return out

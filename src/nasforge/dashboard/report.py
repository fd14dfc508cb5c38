"""``write_report``: the dashboard's views of some studies as one HTML file that opens
offline, to attach to a mail or a pull request.

The file is the dashboard's page with its style and scripts inlined and the data embedded in
``<script id="nasforge-data" type="application/json">``: the overview of the chosen studies,
each study's page (the same payload the server sends), the full detail with the drawing of the
best, the Pareto-front and the top trials (up to ``max_drawings`` per study), and the
comparison folders given. The page reads that element instead of asking a server, and a
Content-Security-Policy in the file forbids every network request, so what it shows is what
the file holds. The JSON is written compactly and escaped so that no text in it (a study name,
an architecture string) can end the element: a 10,000-trial NB201 study takes about 3 MB.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasforge.errors import InvalidConfigError

if TYPE_CHECKING:
    from nasforge.dashboard._data import DashboardData
    from nasforge.storage import Storage

__all__ = ["embed_json", "select_trials", "static_files", "write_report"]

#: Characters written as ``\\uXXXX`` escapes in the embedded JSON: ``<`` and ``>`` (so that
#: ``</script>`` or ``<!--`` in a study name cannot end or bend the element), ``&``, and the
#: two line separators that old JavaScript parsers took for line ends.
_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}
_ESCAPES.update({"\u2028": "\\u2028", "\u2029": "\\u2029"})
_ESCAPED = re.compile("[<>&\u2028\u2029]")

_SCRIPT_TAG = re.compile(
    r"<script\b[^>]*?\bsrc\s*=\s*[\"']?([^\"'\s>]+)[\"']?[^>]*>\s*</script\s*>", re.IGNORECASE
)
_STYLE_LINK = re.compile(r"<link\b[^>]*?\brel\s*=\s*[\"']?stylesheet[\"']?[^>]*>", re.IGNORECASE)
_INLINE_SCRIPT = re.compile(
    r"<script\b((?:(?!\bsrc\s*=)[^>])*)>(.*?)</script\s*>", re.IGNORECASE | re.DOTALL
)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)
_HREF = re.compile(r"\bhref\s*=\s*[\"']?([^\"'\s>]+)", re.IGNORECASE)
_CHARSET = re.compile(r"<meta\b[^>]*\bcharset\s*=[^>]*>", re.IGNORECASE)
_TITLE = re.compile(r"<title\b[^>]*>.*?</title\s*>", re.IGNORECASE | re.DOTALL)


def embed_json(payload: Any) -> str:
    """``payload`` as compact JSON text that is safe inside a ``<script>`` element.

    Example:
        >>> embed_json({"name": "</script><script>alert(1)</script>"})
        '{"name":"\\\\u003c/script\\\\u003e\\\\u003cscript\\\\u003ealert(1)\\\\u003c/script\\\\u003e"}'
    """
    text = json.dumps(payload, allow_nan=False, separators=(",", ":"), ensure_ascii=False)
    return _ESCAPED.sub(lambda m: _ESCAPES[m.group()], text)


def select_trials(study: Mapping[str, Any], limit: int) -> list[int]:
    """The numbers of the trials of a study page whose full detail (and drawing) a report
    holds: the best, then the Pareto front, then the best trials by the first objective, at
    most ``limit`` in all."""
    chosen: dict[int, None] = {}

    def add(numbers: Iterable[Any]) -> None:
        for number in numbers:
            if len(chosen) >= limit:
                return
            if isinstance(number, int) and not isinstance(number, bool):
                chosen.setdefault(number, None)

    best = study.get("best") or {}
    add([best.get("number")])
    scatter = study.get("scatter") or {}
    add(scatter.get("front") or [])
    add(_ranked(study))
    return list(chosen)


def _ranked(study: Mapping[str, Any]) -> list[int]:
    """Trial numbers of the COMPLETE trials, best first by the first objective (trials
    without its value last, in trial order)."""
    table = study.get("trials") or {}
    fields = list(table.get("fields") or [])
    objectives = study.get("objectives") or []
    if "number" not in fields or "state" not in fields:
        return []
    at_number, at_state = fields.index("number"), fields.index("state")
    metric = objectives[0].get("metric") if objectives else None
    at_value = fields.index(metric) if metric in fields else None
    sign = -1.0 if objectives and objectives[0].get("direction") == "max" else 1.0

    def key(row: Sequence[Any]) -> tuple[float, int]:
        value = row[at_value] if at_value is not None else None
        if isinstance(value, (int, float)) and math.isfinite(value):
            return sign * float(value), row[at_number]
        return math.inf, row[at_number]

    rows = [row for row in table.get("rows") or [] if row[at_state] == "COMPLETE"]
    return [row[at_number] for row in sorted(rows, key=key)]


def write_report(
    storage: str | Storage,
    studies: Sequence[str],
    out: str | Path,
    *,
    comparisons: Sequence[str | Path] = (),
    max_drawings: int = 200,
) -> Path:
    """Write the dashboard's views of ``studies`` as one self-contained HTML file.

    Args:
        storage: A storage URL or an open storage; it is only read.
        studies: The names of the studies to include (at least one).
        out: The HTML file to write (replaced when it exists).
        comparisons: Folders written by ``nasforge compare --out DIR`` to include.
        max_drawings: How many trials per study carry their full detail and drawing (the
            best, the Pareto front, then the best by the first objective); the others are
            in the trial table.

    Returns:
        The path written.

    Raises:
        StudyNotFoundError: A study is not in the storage (the message lists those that are).
        StorageError: The storage cannot be read.
        InvalidConfigError: No study is named, ``max_drawings`` is negative, or a comparison
            folder cannot be read.
    """
    from nasforge.dashboard._data import DashboardData

    names = list(dict.fromkeys(studies))
    if isinstance(studies, str) or not names:
        raise InvalidConfigError(
            "Name the studies to report as a list, e.g. write_report(url, ['rea'], 'report.html')"
            " (nasforge report --all takes every study)."
        )
    if isinstance(max_drawings, bool) or not isinstance(max_drawings, int) or max_drawings < 0:
        raise InvalidConfigError(f"max_drawings must be 0 or more, got {max_drawings!r}.")
    path = Path(out)
    data = DashboardData(storage, comparisons=comparisons)
    try:
        payload = report_payload(data, names, max_drawings)
    finally:
        data.close()
    title = "nasforge report: " + ", ".join(names)
    document = render(payload, title)
    # written beside and renamed, so that an interrupted run never leaves half a report
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_text(document, encoding="utf-8")
        os.replace(partial, path)
    except OSError as exc:  # named by the path asked for, not by the file beside it
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    finally:
        partial.unlink(missing_ok=True)
    return path


def report_payload(data: DashboardData, names: Sequence[str], max_drawings: int) -> dict[str, Any]:
    """The data a report embeds: ``{"mode": "report", "overview", "studies", "trials",
    "comparisons"}`` (the overview lists only ``names``)."""
    pages = {name: data.study(name) for name in names}  # a missing study fails here, first
    overview = dict(data.overview())
    overview["studies"] = [row for row in overview.get("studies", []) if row["name"] in pages]
    overview["generated_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    details = {
        name: {str(n): data.trial(name, n) for n in select_trials(page, max_drawings)}
        for name, page in pages.items()
    }
    return {
        "mode": "report",
        "overview": overview,
        "studies": pages,
        "trials": details,
        "comparisons": data.comparisons(),
    }


def static_files() -> Any:
    """The folder (a :mod:`importlib.resources` traversable) of the page's files, which the
    server serves and a report inlines."""
    return resources.files("nasforge.dashboard") / "static"


def _static(name: str) -> str:
    return str((static_files() / name).read_text(encoding="utf-8"))


def _inline(text: str, tag: str) -> str:
    """``text`` made safe to sit between ``<tag>`` and ``</tag>``: a ``</tag`` inside (in a
    string or a comment) is written ``<\\/tag``, which means the same in JavaScript and CSS."""
    return re.sub(rf"</(?={tag})", r"<\\/", text, flags=re.IGNORECASE)


def _sha256(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def render(payload: Any, title: str) -> str:
    """The dashboard's page with its files inlined, ``payload`` embedded and a policy that
    lets only those scripts run and forbids every network request.

    The scripts that index.html links go, in their order, to the end of the body (where a
    ``defer`` script would run), after the data element.
    """
    page = _TITLE.sub(lambda _: f"<title>{html.escape(title)}</title>", _static("index.html"), 1)

    def style(match: re.Match[str]) -> str:
        href = _HREF.search(match.group())
        if href is None:
            raise InvalidConfigError(f"The page links a style sheet without href: {match.group()}")
        return f"<style>{_inline(_static(_file_name(href.group(1))), 'style')}</style>"

    scripts: list[str] = []

    def script(match: re.Match[str]) -> str:
        scripts.append(_inline(_static(_file_name(match.group(1))), "script"))
        return ""

    page = _STYLE_LINK.sub(style, page)
    page = _SCRIPT_TAG.sub(script, page)
    own = [code for attributes, code in _INLINE_SCRIPT.findall(page) if "json" not in attributes]
    policy = (
        "default-src 'none'; script-src "
        + " ".join(_sha256(code) for code in [*own, *scripts])
        + "; style-src 'unsafe-inline'; img-src data: blob:; font-src data:; base-uri 'none'; "
        "form-action 'none'"
    )
    # the policy before anything it governs, after the charset (which must come first)
    meta = f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
    found = _CHARSET.search(page)
    if found is None:
        raise InvalidConfigError("The dashboard's index.html has no charset; reinstall nasforge.")
    page = page[: found.end()] + meta + page[found.end() :]
    tail = f'<script id="nasforge-data" type="application/json">{embed_json(payload)}</script>'
    tail += "".join(f"<script>{code}</script>" for code in scripts)
    end = _BODY_END.search(page)
    at = end.start() if end is not None else len(page)
    return page[:at] + tail + page[at:]


def _file_name(reference: str) -> str:
    """The file of ``static/`` that a link of index.html names (``static/app.js``,
    ``/static/app.js`` or ``app.js``)."""
    name = reference.split("?", 1)[0].rsplit("/", 1)[-1]
    if not name or reference.startswith(("http:", "https:", "//")):
        raise InvalidConfigError(f"The dashboard page links {reference!r}, not a file of its own.")
    return name

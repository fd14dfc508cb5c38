"""write_report: one HTML file holding the page, its scripts and the studies' data, that no
text in the data can break out of, that fetches nothing and opens offline in a browser."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

import nasforge
from nasforge.dashboard import write_report
from nasforge.dashboard.report import embed_json, select_trials
from nasforge.errors import InvalidConfigError, StudyNotFoundError

ODD = "</script><script>document.title='pwned'</script><!-- & >"
DATA = re.compile(r'<script id="nasforge-data" type="application/json">(.*?)</script>', re.DOTALL)


def search(url: str, name: str, budget: int, objectives: list[str]) -> None:
    study = nasforge.create_study(
        space="nb201", strategy="random", seed=2, storage=url, study_name=name,
        objectives=objectives,
    )  # fmt: skip
    study.optimize(nasforge.evaluators.create("tabular", benchmark="nb201"), budget=budget)
    study.storage.close()


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('report') / 'runs.db'}"
    search(url, "mo", 80, ["valid_acc:max", "params_M:min"])
    search(url, ODD, 15, ["valid_acc:max"])
    search(url, "other", 5, ["valid_acc:max"])
    return url


@pytest.fixture(scope="module")
def report(url: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from nasforge.experiments import run_comparison

    folder = tmp_path_factory.mktemp("compare") / "re-vs-random"
    run_comparison(
        ["regularized-evolution", "random"], datasets=["cifar10"], seeds=2, budget=12,
        dedupe=False, n_jobs=1,
    ).write(folder)  # fmt: skip
    out = tmp_path_factory.mktemp("out") / "report.html"
    assert write_report(url, ["mo", ODD], out, comparisons=[folder], max_drawings=10) == out
    return out


def embedded(path: Path) -> tuple[str, Any]:
    text = path.read_text(encoding="utf-8")
    found = DATA.search(text)
    assert found is not None
    return text, json.loads(found.group(1))


def test_the_data_is_embedded_and_cannot_end_its_element(report: Path) -> None:
    text, data = embedded(report)
    assert data["mode"] == "report"
    assert sorted(data["studies"]) == sorted(["mo", ODD])
    assert data["studies"][ODD]["name"] == ODD
    assert [row["name"] for row in data["overview"]["studies"]] == ["mo", ODD]  # not "other"
    assert [c["name"] for c in data["overview"]["comparisons"]] == ["re-vs-random"]
    (comparison,) = data["comparisons"]
    assert set(comparison["datasets"]["cifar10"]) == {"regularized-evolution", "random"}
    raw = DATA.search(text).group(1)  # type: ignore[union-attr]
    for char in "<>&\u2028\u2029":
        assert char not in raw
    # read as a browser does, the file has the data element and then the page's own scripts
    scripts = Scripts()
    scripts.feed(text)
    assert [attrs.get("id") for attrs, _ in scripts.found] == ["nasforge-data", None, None]
    assert json.loads(scripts.found[0][1]) == data
    static = resources.files("nasforge.dashboard") / "static"
    own = [(static / name).read_text(encoding="utf-8") for name in ("charts.js", "app.js")]
    assert [code for _, code in scripts.found[1:]] == own


class Scripts(HTMLParser):
    """The ``<script>`` elements of a page: their attributes and their text."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[dict[str, str | None], str]] = []
        self.inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.found.append((dict(attrs), ""))
            self.inside = True

    def handle_endtag(self, tag: str) -> None:
        self.inside = self.inside and tag != "script"

    def handle_data(self, data: str) -> None:
        if self.inside:
            attrs, text = self.found[-1]
            self.found[-1] = (attrs, text + data)


def test_trial_details_for_the_best_and_the_front(report: Path) -> None:
    _, data = embedded(report)
    page = data["studies"]["mo"]
    details = data["trials"]["mo"]
    assert len(details) == 10
    assert str(page["best"]["number"]) in details
    front = page["scatter"]["front"]
    assert set(map(str, front[:9])) <= set(details)
    detail = details[str(page["best"]["number"])]
    assert detail["drawing"]["kind"] == "cells" and detail["arch"] == page["best"]["arch"]


def test_select_trials_orders_best_front_then_top() -> None:
    page = {
        "objectives": [{"metric": "acc", "direction": "max"}],
        "best": {"number": 4},
        "scatter": {"front": [4, 7]},
        "trials": {
            "fields": ["number", "state", "acc"],
            "rows": [[0, "COMPLETE", 0.5], [1, "FAILED", None], [2, "COMPLETE", 0.9],
                     [3, "COMPLETE", None], [4, "COMPLETE", 0.95], [7, "COMPLETE", 0.1]],
        },
    }  # fmt: skip
    assert select_trials(page, 10) == [4, 7, 2, 0, 3]
    assert select_trials(page, 3) == [4, 7, 2]
    assert select_trials(page, 0) == []
    page["objectives"] = [{"metric": "acc", "direction": "min"}]
    assert select_trials({**page, "best": None, "scatter": None}, 2) == [7, 0]


def test_the_file_is_self_contained(report: Path) -> None:
    text, _ = embedded(report)
    page = DATA.sub("", text)
    assert not re.search(r"<script[^>]*\bsrc\s*=", page, re.IGNORECASE)
    assert not re.search(r"<link\b", page, re.IGNORECASE)
    # styles refer to nothing outside the file (url(#id) is an element of the page)
    styles = "".join(re.findall(r"<style>(.*?)</style>", page, re.DOTALL))
    assert styles and not re.search(r"@import|url\(\s*['\"]?(?!data:|#)", styles)
    # the only web address outside the data is SVG's namespace name, which is never fetched
    addresses = set(re.findall(r"https?://[^\s\"'`)<>]*", page))
    assert addresses <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page)
    assert policy is not None and "default-src 'none'" in policy.group(1)
    assert "connect-src" not in policy.group(1)  # default-src 'none' forbids every request


def test_embed_json_escapes_what_html_would_read() -> None:
    text = embed_json({"a": "</SCRIPT>&\u2029", "b": [1.5, None]})
    assert text == '{"a":"\\u003c/SCRIPT\\u003e\\u0026\\u2029","b":[1.5,null]}'
    assert json.loads(text) == {"a": "</SCRIPT>&\u2029", "b": [1.5, None]}
    with pytest.raises(ValueError):
        embed_json({"a": float("nan")})


def test_a_missing_study_is_refused_with_the_studies_listed(url: str, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    with pytest.raises(StudyNotFoundError, match="other") as info:
        write_report(url, ["mo", "absent"], out)
    assert "absent" in str(info.value) and "mo" in str(info.value)
    assert not out.exists()
    with pytest.raises(InvalidConfigError, match="Name the studies"):
        write_report(url, [], out)
    with pytest.raises(InvalidConfigError, match="Name the studies"):
        write_report(url, "mo", out)
    with pytest.raises(InvalidConfigError, match="max_drawings"):
        write_report(url, ["mo"], out, max_drawings=-1)


def test_a_file_that_cannot_be_written_is_named_as_asked(url: str, tmp_path: Path) -> None:
    out = tmp_path / "missing" / "r.html"
    with pytest.raises(FileNotFoundError) as info:
        write_report(url, ["other"], out, max_drawings=0)
    assert info.value.filename == str(out)  # not the partial file written beside it


def test_no_drawings_asked_keeps_only_the_table(url: str, tmp_path: Path) -> None:
    out = write_report(url, ["other"], tmp_path / "r.html", max_drawings=0)
    assert list(tmp_path.iterdir()) == [out]  # no partial file left beside it
    _, data = embedded(out)
    assert data["trials"] == {"other": {}}
    assert len(data["studies"]["other"]["trials"]["rows"]) == data["studies"]["other"]["n_trials"]


# -- in a real browser, offline (the browser fixture is in conftest.py) ----------------------------
def test_the_report_opens_offline_and_shows_markup_as_text(browser: Any, report: Path) -> None:
    context = browser.new_context(offline=True)
    requests: list[str] = []
    dialogs: list[str] = []

    def block(route: Any) -> None:
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            requests.append(route.request.url)
            route.abort()

    context.route("**/*", block)
    page = context.new_page()
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(report.as_uri() + "#/")
    page.wait_for_function("document.body.dataset.ready === 'overview'", timeout=15000)
    names = page.eval_on_selector_all("tr[data-study]", "rows => rows.map(r => r.dataset.study)")
    assert names == ["mo", ODD]
    page.goto(report.as_uri() + "#/study/" + "mo")
    page.wait_for_function("document.body.dataset.ready === 'study'", timeout=15000)
    _, data = embedded(report)
    assert page.text_content("#nf-trial-count").strip() == str(data["studies"]["mo"]["n_trials"])
    assert page.locator("svg#nf-chart-scatter circle.nf-point").count() > 0
    page.evaluate("name => { location.hash = '#/study/' + encodeURIComponent(name) }", ODD)
    page.wait_for_function(
        "name => document.body.dataset.ready === 'study' && "
        "document.querySelector('#nf-study-name').textContent.includes(name)",
        arg=ODD,
        timeout=15000,
    )
    assert page.title() != "pwned" and dialogs == []
    page.goto(report.as_uri() + "#/")
    page.click("#nf-comparisons a")
    page.wait_for_selector("body[data-ready='compare']", timeout=15000)
    assert page.locator("table#nf-compare-table tbody tr").count() == 2  # one per strategy
    assert page.locator("svg.nf-compare-curve").count() == 1  # one per dataset
    assert requests == [] and errors == []
    context.close()

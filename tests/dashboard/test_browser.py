"""The dashboard in a real browser (headless Chromium): the pages show what the storage
holds, draw their charts and architectures, follow a running search without a reload, never
run text from the storage as code, say when a study is deleted or the server is gone, and the
report shows the same offline.

One storage for the module, written by a real NB201 tabular search, a tiny one-shot DARTS
search and a study whose name and architecture text hold ``<script>``. Skipped with the
reason when Chromium or playwright is missing (failed under ``NASFORGE_REQUIRE_BROWSER=1``).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

import nasforge
from nasforge.architecture import Architecture
from nasforge.storage import Storage, get_storage
from nasforge.trial import Trial, TrialState

SEARCH = "nb201-random"
ONESHOT = "darts-oneshot"
EVIL = "evil <script>window.__pwned=1</script>"
EVIL_ARCH = "|nor_conv_3x3~0|+|<script>window.__pwned=1</script>~0|none~1|+|none~0|none~1|none~2|"
DOOMED = "to-be-deleted"
EVIL_REASON = "<script>window.__pwned=1</script>"
PARAM_FREE = ("none", "skip_connect", "avg_pool_3x3")
COMPARED = ["regularized-evolution", "random"]
WAIT_MS = 15_000  # the page polls every 2 s; a change shows within one or two polls


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite storage with a tabular search, a one-shot search and the <script> study."""
    from nasforge import oneshot
    from nasforge.oneshot import SupernetSettings
    from nasforge.train import SyntheticImages

    url = f"sqlite:///{tmp_path_factory.mktemp('dashboard')}/runs.db"
    tabular = nasforge.evaluators.create("tabular", dataset="cifar10")
    study = nasforge.create_study(
        space="nb201",
        strategy="random",
        seed=0,
        storage=url,
        study_name=SEARCH,
        objectives=["valid_acc:max", "params_M:min"],
    )
    study.optimize(tabular, budget=60)
    data = SyntheticImages(num_classes=4, n_train=32, n_test=4, size=8).load()
    settings = SupernetSettings(channels=4, cells=1, batch_size=16)
    oneshot.search(
        "darts", data, settings=settings, epochs=2, device="cpu", storage=url, study_name=ONESHOT
    )
    evil = nasforge.create_study(space="nb201", seed=1, storage=url, study_name=EVIL)
    evil.optimize(tabular, budget=3)
    writer = get_storage(url)
    record = writer.get_study(EVIL)
    assert record is not None and record.study_id is not None
    good = writer.get_trials(record.study_id)[0].arch
    arch = Architecture("nb201", good.choices, EVIL_ARCH)
    number = writer.add_trial(record.study_id, Trial(number=-1, arch=arch))
    writer.finish_trial(
        record.study_id,
        Trial(number, arch, state=TrialState.FAILED, fail_reason=f"{EVIL_REASON} failed"),
    )
    writer.close()
    return url


@pytest.fixture(scope="module")
def writer(url: str) -> Iterator[Storage]:
    """A second, writable connection to the storage: another worker."""
    storage = get_storage(url)
    yield storage
    storage.close()


@pytest.fixture(scope="module")
def comparison(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    """A small comparison folder, as `nasforge compare --out DIR` writes it."""
    from nasforge.experiments import run_comparison

    result = run_comparison(
        COMPARED, datasets=["cifar10", "cifar100"], seeds=2, budget=12, dedupe=False, n_jobs=1
    )
    folder = tmp_path_factory.mktemp("compare") / "re-vs-random"
    result.write(folder)
    return result, folder


@pytest.fixture(scope="module")
def site(url: str, serve: Any, comparison: tuple[Any, Path]) -> str:
    from nasforge.dashboard import DashboardData, create_app

    return serve(create_app(DashboardData(url, comparisons=[comparison[1]]))).url


@pytest.fixture(scope="module")
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors
    yield page
    context.close()


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def _trials(storage: Storage, name: str) -> list[Trial]:
    record = storage.get_study(name)
    assert record is not None and record.study_id is not None
    return storage.get_trials(record.study_id)


def _open(page: Any, address: str, view: str) -> None:
    """Load address freshly and wait until the view has drawn its data."""
    page.goto("about:blank")
    page.goto(address)
    page.wait_for_selector(f"body[data-ready='{view}']", timeout=WAIT_MS)


def _numbers(page: Any) -> list[int]:
    """The trial numbers of the table's rows shown, sorted."""
    shown = page.locator("#nf-trials tbody tr[data-number]")
    return sorted(int(n) for n in shown.evaluate_all("rows => rows.map(r => r.dataset.number)"))


def _study(site: str, name: str) -> str:
    return f"{site}#/study/{quote(name, safe='')}"


def test_overview_lists_every_study_with_its_trial_count(page, site, writer):
    _open(page, site, "overview")
    for record in writer.list_studies():
        row = page.locator(f"#nf-studies tr[data-study='{record.name}']")
        shown = row.locator("td.nf-n-trials").inner_text().strip()
        assert shown == str(len(_trials(writer, record.name))), record.name
    best = page.locator(f"#nf-studies tr[data-study='{SEARCH}'] td.nf-best-arch").inner_text()
    assert best.strip().startswith("|")
    assert page.locator("#nf-comparisons").count() == 1
    assert not page.errors


def test_the_overview_fits_the_window_with_a_long_macro_architecture(page, site, url, writer):
    from nasforge.evaluators.function import FunctionEvaluator

    def size(arch: Architecture, context: Any) -> float:
        return float(len(str(arch)))

    name = "mobilenet+recipe-long"
    study = nasforge.create_study(space="mobilenet+recipe", seed=0, storage=url, study_name=name)
    study.optimize(FunctionEvaluator(size, pass_model=False, cost_unit="calls"), budget=1)
    (trial,) = _trials(writer, name)
    assert len(str(trial.arch)) > 400
    _open(page, site, "overview")
    box = page.locator("#nf-studies").locator("xpath=..")
    assert box.evaluate("b => b.scrollWidth <= b.clientWidth")  # no sideways scrolling at 1280 px
    cell = page.locator(f"#nf-studies tr[data-study='{name}'] td.nf-best-arch")
    assert cell.locator("code").text_content() == str(trial.arch)  # whole, for copy and search
    assert str(trial.arch) in cell.locator("code").get_attribute("title")
    height = cell.bounding_box()["height"]
    assert height < 120, f"the best architecture made a row {height} px high"


def test_study_page_shows_the_count_the_best_and_draws_the_charts(page, site, writer, artifacts):
    trials = _trials(writer, SEARCH)
    complete = [t for t in trials if t.state is TrialState.COMPLETE]
    top = max(t.metrics["valid_acc"] for t in complete)
    _open(page, _study(site, SEARCH), "study")
    assert page.locator("#nf-study-name").inner_text() == SEARCH
    assert page.locator("#nf-trial-count").inner_text() == str(len(trials))
    shown = float(page.locator("#nf-best-value").get_attribute("data-value"))
    assert math.isclose(shown, top, rel_tol=1e-5)
    assert page.locator("#nf-best-arch").inner_text() in {
        str(t.arch) for t in complete if math.isclose(t.metrics["valid_acc"], top, rel_tol=1e-5)
    }
    assert page.locator("#nf-best-value").inner_text() == f"{top:.4g}"
    scatter = page.locator("svg#nf-chart-scatter")
    assert scatter.locator("circle.nf-point").count() == len(complete)
    assert scatter.locator("circle.nf-front").count() >= 1
    # The legend (trials, the study's front, the true front: two rows) stays clear of the plot.
    legend_bottom, plot_top = scatter.evaluate(
        """svg => {
            const r = svg.querySelector(".nf-legend").getBBox();
            const tops = [...svg.querySelectorAll(".nf-grid line")].map(l => +l.getAttribute("y1"));
            return [r.y + r.height, Math.min(...tops)];
        }"""
    )
    assert scatter.locator(".nf-legend-item").count() == 3
    assert legend_bottom + 4 <= plot_top
    for chart in ("#nf-chart-trajectory", "#nf-chart-cost"):
        path = page.locator(f"svg{chart} path.nf-trajectory")
        assert path.count() == 1 and path.get_attribute("d").count("H") >= 1
    assert page.locator("#nf-importance rect.nf-bar").count() >= 1
    assert page.locator("#nf-trials tbody tr[data-number]").count() == len(trials)
    assert page.locator("#nf-failures").inner_text().strip() == "No failed trials."
    shot = artifacts / "study.png"
    page.screenshot(path=str(shot))
    print(f"screenshot of the study page: {shot}")
    assert not page.errors


def test_the_trial_table_sorts_and_filters(page, site, writer):
    trials = _trials(writer, SEARCH)
    _open(page, _study(site, SEARCH), "study")
    page.click("#nf-trials th[data-key='valid_acc']")
    first = int(page.locator("#nf-trials tbody tr").first.get_attribute("data-number"))
    assert trials[first].metrics["valid_acc"] == max(t.metrics.get("valid_acc", -1) for t in trials)
    needle = "nor_conv_3x3~0|+|nor_conv_3x3~0"
    page.fill("#nf-filter", needle)
    expected = sorted(t.number for t in trials if needle in str(t.arch))
    assert _numbers(page) == expected
    page.fill("#nf-filter", "")
    page.select_option("#nf-state-filter", "FAILED")
    assert page.locator("#nf-trials tbody tr[data-number]").count() == 0


def test_the_trial_table_pages_by_100(page, site, url, writer):
    nasforge.create_study(space="nb201", seed=2, storage=url, study_name="paged")
    record = writer.get_study("paged")
    assert record is not None and record.study_id is not None
    arch = _trials(writer, SEARCH)[0].arch
    for i in range(130):  # finished trials written directly: fast, and their metric is known
        number = writer.add_trial(record.study_id, Trial(-1, arch))
        writer.finish_trial(
            record.study_id, Trial(number, arch, TrialState.COMPLETE, metrics={"valid_acc": i})
        )
    _open(page, _study(site, "paged"), "study")
    assert page.locator("#nf-trial-count").inner_text() == "130"
    assert _numbers(page) == list(range(30, 130))  # newest first
    assert "1–100 of 130" in page.locator(".nf-page-info").inner_text()
    page.click("button.nf-next")
    assert _numbers(page) == list(range(30))
    assert page.locator("button.nf-next").is_disabled()
    page.click("button.nf-prev")
    assert _numbers(page) == list(range(30, 130))


def test_clicking_a_trial_draws_its_cell(page, site, writer):
    trials = _trials(writer, SEARCH)
    _open(page, _study(site, SEARCH), "study")
    row = page.locator("#nf-trials tbody tr[data-number]").nth(3)
    trial = trials[int(row.get_attribute("data-number"))]
    row.locator("td").first.click()
    page.wait_for_selector("#nf-trial-detail svg#nf-drawing g.nf-node", timeout=WAIT_MS)
    drawing = page.locator("#nf-drawing")
    assert drawing.locator("g.nf-node").count() == 4
    assert drawing.locator("g.nf-edge").count() == 6
    ops = [part.split("~")[0] for part in str(trial.arch).split("|") if "~" in part]
    free = sum(op in PARAM_FREE for op in ops)
    assert drawing.locator("g.nf-edge.nf-param-free").count() == free
    assert drawing.locator("g.nf-edge.nf-has-params").count() == 6 - free
    assert page.locator("#nf-detail-arch").inner_text() == str(trial.arch)
    assert page.locator("#nf-trial-detail").inner_text().count("valid_acc") >= 1


@pytest.mark.parametrize("space", ["darts", "mobilenet"])
def test_a_genotype_draws_two_cells_and_a_macro_network_a_strip_of_blocks(page, site, url, space):
    from nasforge.evaluators.function import FunctionEvaluator
    from nasforge.spaces import create as create_space

    def size(arch: Architecture, context: Any) -> float:
        return float(len(str(arch)))

    name = f"{space}-drawn"
    study = nasforge.create_study(space=space, seed=0, storage=url, study_name=name)
    study.optimize(FunctionEvaluator(size, pass_model=False, cost_unit="calls"), budget=1)
    (trial,) = study.trials
    drawing = create_space(space).drawing(trial.arch)
    _open(page, _study(site, name), "study")
    # One trial, number 0: its axis starts at 0, not at a trial -1.
    ticks = page.locator("svg#nf-chart-trajectory .nf-axis text").all_text_contents()
    assert "0" in ticks and not [t for t in ticks if t.startswith("-")]
    page.locator("#nf-trials tbody tr[data-number='0'] td").first.click()
    page.wait_for_selector("#nf-drawing[data-kind]", timeout=WAIT_MS)
    svg = page.locator("#nf-drawing")
    assert svg.get_attribute("data-kind") == drawing["kind"]
    if drawing["kind"] == "cells":
        assert [c["name"] for c in drawing["cells"]] == ["normal", "reduce"]
        for cell in drawing["cells"]:
            shown = svg.locator(f"g.nf-cell[data-cell='{cell['name']}']")
            assert shown.locator("g.nf-node").count() == len(cell["nodes"])
            assert shown.locator("g.nf-edge").count() == len(cell["edges"])
            free = sum(e["param_free"] for e in cell["edges"])
            assert shown.locator("g.nf-edge.nf-param-free").count() == free
    else:
        blocks = svg.locator("g.nf-block")
        assert blocks.count() == len(drawing["blocks"])
        skipped = sum(b["skipped"] for b in drawing["blocks"])
        assert svg.locator("g.nf-block.nf-skipped").count() == skipped
        first = drawing["blocks"][0]
        text = blocks.first.text_content()
        assert str(first["label"]) in text
        for key, value in first["choices"].items():
            assert f"{key} {value}" in text
        # Every label and choice ends inside its block's box (none runs into the next block),
        # and a skipped block says so.
        overflow = blocks.evaluate_all(
            """blocks => blocks.flatMap(b => {
                const box = b.querySelector("rect.nf-block-box").getBBox();
                return [...b.querySelectorAll("text")].filter(t => {
                    const r = t.getBBox();
                    return r.x + r.width > box.x + box.width - 2;
                }).map(t => t.textContent);
            })"""
        )
        assert overflow == []
        for block in svg.locator("g.nf-block.nf-skipped").all():
            assert "skipped" in block.text_content()


def test_a_long_list_of_settings_is_folded_under_the_drawing(page, site, url):
    from nasforge.evaluators.function import FunctionEvaluator
    from nasforge.spaces import create as create_space

    def size(arch: Architecture, context: Any) -> float:
        return float(len(str(arch)))

    name = "nb201+quant-drawn"
    study = nasforge.create_study(space="nb201+quant", seed=0, storage=url, study_name=name)
    study.optimize(FunctionEvaluator(size, pass_model=False, cost_unit="calls"), budget=1)
    (trial,) = study.trials
    settings = create_space("nb201+quant").drawing(trial.arch)["settings"]
    assert len(settings) > 12  # a precision per layer
    _open(page, _study(site, name), "study")
    page.locator("#nf-trials tbody tr[data-number='0'] td").first.click()
    page.wait_for_selector("#nf-drawing g.nf-node", timeout=WAIT_MS)
    fold = page.locator("#nf-trial-detail details.nf-settings-fold")
    assert fold.locator("summary").inner_text() == f"{len(settings)} settings"
    assert not page.locator("#nf-drawing-settings").is_visible()
    metrics = page.locator("#nf-trial-detail table.nf-kv").first.bounding_box()
    assert metrics is not None and metrics["y"] < 800  # the metrics in view, under the drawing
    fold.locator("summary").click()
    shown = page.locator("#nf-drawing-settings li")
    assert shown.count() == len(settings)
    first = next(iter(settings))
    assert shown.first.inner_text() == f"{first} {settings[first]}"


def test_a_trial_finished_by_another_worker_appears_without_a_reload(page, site, writer):
    before = len(_trials(writer, SEARCH))
    _open(page, _study(site, SEARCH), "study")
    page.evaluate("window.__same_page = true")
    version = page.evaluate("document.body.dataset.version")
    record = writer.get_study(SEARCH)
    assert record is not None and record.study_id is not None
    arch = _trials(writer, SEARCH)[0].arch
    result = nasforge.evaluators.create("tabular", dataset="cifar10").evaluate(arch)

    def work() -> None:  # another worker: start a trial, then finish it
        number = writer.add_trial(record.study_id, Trial(number=-1, arch=arch, worker="other"))
        done = Trial(number=number, arch=arch, state=TrialState.COMPLETE, worker="other")
        done.metrics, done.cost = dict(result.metrics), result.cost
        writer.finish_trial(record.study_id, done)

    worker = threading.Thread(target=work)
    worker.start()
    worker.join(timeout=60)
    assert len(_trials(writer, SEARCH)) == before + 1
    expect(page.locator("#nf-trial-count")).to_have_text(str(before + 1), timeout=WAIT_MS)
    assert page.evaluate("window.__same_page") is True  # no reload
    assert page.evaluate("document.body.dataset.version") != version
    assert page.locator(f"#nf-trials tr[data-number='{before}']").count() == 1
    complete = [t for t in _trials(writer, SEARCH) if t.state is TrialState.COMPLETE]
    assert page.locator("svg#nf-chart-scatter circle.nf-point").count() == len(complete)


def test_script_in_a_study_name_or_an_architecture_is_shown_as_text(page, site):
    _open(page, site, "overview")
    link = page.locator("#nf-studies tr", has_text="evil").locator("a.nf-study-link")
    assert link.inner_text() == EVIL
    link.click()
    page.wait_for_selector("body[data-ready='study']", timeout=WAIT_MS)
    assert page.locator("#nf-study-name").inner_text() == EVIL
    assert page.title().startswith(EVIL)
    row = page.locator("#nf-trials tbody tr[data-state='FAILED']")
    assert row.locator("code.nf-arch").inner_text() == EVIL_ARCH
    row.locator("td").first.click()
    page.wait_for_selector("#nf-detail-arch", timeout=WAIT_MS)
    assert page.locator("#nf-detail-arch").inner_text() == EVIL_ARCH
    assert f"{EVIL_REASON} failed" in page.locator("#nf-failures").inner_text()
    assert page.evaluate("typeof window.__pwned") == "undefined"
    scripts = page.evaluate("[...document.scripts].map(s => s.src.split('/').pop())")
    assert scripts == ["charts.js", "app.js"]


def test_a_study_deleted_while_its_page_is_open_says_so(page, site, url, writer):
    study = nasforge.create_study(space="nb201", strategy="random", storage=url, study_name=DOOMED)
    study.optimize(nasforge.evaluators.create("tabular", dataset="cifar10"), budget=2)
    _open(page, _study(site, DOOMED), "study")
    # A reader scrolled down to a trial, its panel open: the banner must still be seen.
    page.locator("#nf-trials tbody tr[data-number='0'] td").first.click()
    page.wait_for_selector("#nf-drawing g.nf-node", timeout=WAIT_MS)
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    writer.delete_study(DOOMED)
    banner = page.locator("#nf-banner")
    banner.wait_for(state="visible", timeout=WAIT_MS)
    assert f"Study '{DOOMED}' was deleted from the storage" in banner.inner_text()
    assert page.locator("#nf-trial-count").inner_text() == "2"  # the last state stays shown
    seen = banner.evaluate(
        """b => { const r = b.getBoundingClientRect();
            const y = r.top + r.height / 2;
            return r.top >= 0 && document.elementFromPoint(r.left + 20, y) === b; }"""
    )
    assert seen, "the banner is scrolled away or covered by the trial panel"
    panel = page.locator("#nf-trial-detail").bounding_box()
    assert panel is not None and panel["y"] >= banner.bounding_box()["y"] + 10
    # Another study's page is live again: no banner, no stale mark from the deleted one.
    _open(page, _study(site, SEARCH), "study")
    assert banner.is_hidden()
    assert "nf-stale" not in (page.get_attribute("body", "class") or "")


def test_the_page_says_when_the_server_is_gone(browser, url, serve):
    from nasforge.dashboard import DashboardData, create_app

    served = serve(create_app(DashboardData(url)))
    context = browser.new_context()
    page = context.new_page()
    try:
        _open(page, _study(served.url, SEARCH), "study")
        served.stop()
        banner = page.locator("#nf-banner")
        banner.wait_for(state="visible", timeout=WAIT_MS)
        assert "Lost the connection" in banner.inner_text()
        assert page.locator("#nf-trial-count").inner_text() != ""
        assert page.locator("#nf-status").inner_text() == "connection lost"
    finally:
        context.close()


def test_one_shot_page_draws_the_weights_per_epoch(page, site, artifacts):
    _open(page, _study(site, ONESHOT), "study")
    payload = page.evaluate(f"fetch('api/study/{quote(ONESHOT)}').then(r => r.json())")
    oneshot = payload["oneshot"]
    assert oneshot["epochs"] and oneshot["groups"]
    share = page.locator("svg#nf-oneshot-share")
    assert share.locator("path.nf-line").count() == 2
    assert share.locator("circle.nf-marker").count() >= len(oneshot["epochs"])
    weights = page.locator("svg#nf-oneshot-weights")
    rows = sum(len(group["rows"]) for group in oneshot["groups"])
    assert weights.locator("svg.nf-mini").count() == rows
    options = len(oneshot["groups"][0]["options"])
    assert weights.locator("svg.nf-mini").first.locator("path.nf-line").count() == options
    assert weights.locator(".nf-legend-item").count() >= options
    page.locator("#nf-oneshot-share").scroll_into_view_if_needed()
    shot = artifacts / "oneshot.png"
    page.screenshot(path=str(shot))
    print(f"screenshot of the one-shot page: {shot}")
    assert not page.errors


def test_comparison_page_shows_the_table_and_a_band_per_strategy(page, site, comparison, artifacts):
    result, _ = comparison
    _open(page, site, "overview")
    page.click("#nf-comparisons a")
    page.wait_for_selector("body[data-ready='compare']", timeout=WAIT_MS)
    rows = {(r.dataset, r.strategy): r for r in result.summary() if r.budget == 12}
    table = page.locator("table#nf-compare-table")
    assert table.locator("tbody tr").count() == len(rows) == 4
    for (dataset, strategy), row in rows.items():
        cells = table.locator(f"tr[data-dataset='{dataset}'][data-strategy='{strategy}'] td")
        mean, _, std = cells.nth(2).inner_text().partition(" ± ")
        assert float(mean) == pytest.approx(row.mean_test, rel=1e-3)
        assert float(std) == pytest.approx(row.std_test, rel=1e-3, abs=1e-9)
        assert cells.nth(4).inner_text() == f"{100 * row.optimum_rate:.0f}%"
    for dataset in ("cifar10", "cifar100"):
        curve = page.locator(f"svg.nf-compare-curve[data-dataset='{dataset}']")
        assert curve.locator("path.nf-band").count() == len(COMPARED)
        assert curve.locator("path.nf-line").count() == len(COMPARED)
    shot = artifacts / "compare.png"
    page.screenshot(path=str(shot))
    print(f"screenshot of the comparison page: {shot}")


def test_the_report_shows_the_study_offline(browser, url, writer, tmp_path):
    from nasforge.dashboard import write_report

    report = write_report(url, [SEARCH, EVIL], tmp_path / "report.html")
    trials = _trials(writer, SEARCH)
    complete = [t for t in trials if t.state is TrialState.COMPLETE]
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_offline(True)
    page = context.new_page()
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        base = Path(report).resolve().as_uri()
        _open(page, base, "overview")
        row = page.locator(f"#nf-studies tr[data-study='{SEARCH}']")
        assert row.locator("td.nf-n-trials").inner_text() == str(len(trials))
        _open(page, f"{base}#/study/{quote(SEARCH, safe='')}", "study")
        assert page.locator("#nf-trial-count").inner_text() == str(len(trials))
        assert page.locator("svg#nf-chart-scatter circle.nf-point").count() == len(complete)
        best = page.locator("#nf-best-arch").inner_text()
        page.click("#nf-best-trial")
        page.wait_for_selector("#nf-drawing g.nf-node", timeout=WAIT_MS)
        assert page.locator("#nf-detail-arch").inner_text() == best
        _open(page, f"{base}#/study/{quote(EVIL, safe='')}", "study")
        assert page.locator("#nf-study-name").inner_text() == EVIL
        assert page.evaluate("typeof window.__pwned") == "undefined"
        assert all(address.startswith("file://") for address in asked), asked
        assert not errors
    finally:
        context.close()

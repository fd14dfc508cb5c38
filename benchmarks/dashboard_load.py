"""Load times of the dashboard in headless Chromium, and the size of a 10,000-trial report
(issue 23).

Two SQLite storages are built (or reused with ``--reuse``): MANY holds 20 studies of 500
trials each (10,000 trials; NB201 tabular searches with various strategies and datasets, two
objectives valid_acc:max and params_M:min), BIG one study of 10,000 trials. Each server is
``nasforge dashboard --storage URL --port 0`` in a fresh process, and the page is loaded in
headless Chromium (playwright on /usr/bin/chromium). A page's time runs from the navigation's start
to the moment its view sets ``document.body.dataset.ready`` (seen by a MutationObserver,
read on the page's performance clock):

* first page (``#/``, ready = "overview") of MANY;
* study page (``#/study/<name>``, ready = "study") of a 500-trial study of MANY and of the
  10,000-trial study of BIG;

each cold (the first load, asked the moment a fresh server prints its address: its caches
empty and its modules not yet loaded), cold
``--after`` seconds after a fresh server started (as a person opens the printed address;
the server reads the studies meanwhile, as ``serve`` does) and warm (median of ``--repeats``
full reloads). To tell which side is slow, it also times the data
layer alone (``DashboardData.overview()``/``study()``, cold and warm), JSON encoding and the
answer's size (plain and gzip), and in the browser the API requests (resource timing) and the
rendering (ready minus the end of the last API answer). Then it writes ``report.html`` for
the 10,000-trial study, prints its size, and opens it from ``file://`` with every network
request blocked, waiting for ready = "study".

Targets printed beside the figures: first page <= 1 s, study page <= 2 s, report <= 5 MB.

    nice python benchmarks/dashboard_load.py                       # full run (builds ~3 min)
    nice python benchmarks/dashboard_load.py --reuse               # reuse the storages
    python benchmarks/dashboard_load.py --smoke --out /tmp/dl      # 4 x 50 + 500 trials

Writes OUT/results.json (OUT defaults to /work/ref/issue23/dashboard_load/).
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import nasforge
from nasforge.dashboard import DashboardData, write_report

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
STRATEGIES = ["random", "regularized-evolution", "local-search", "nsga2", "mo-local-search"]
DATASETS = ["cifar10", "cifar100", "imagenet16-120"]
OBJECTIVES = ["valid_acc:max", "params_M:min"]
TARGETS = {"overview": 1.0, "study": 2.0, "report_mb": 5.0}

# records performance.now() (ms since the navigation started) when body.dataset.ready changes
WATCH = """
window.__nfReady = {};
new MutationObserver(() => {
  const view = document.body && document.body.dataset.ready;
  if (view && !(view in window.__nfReady)) window.__nfReady[view] = performance.now();
}).observe(document, {attributes: true, subtree: true, attributeFilter: ["data-ready"]});
"""


def build(path: Path, studies: int, trials: int, first_seed: int) -> float:
    """A storage at ``path`` with ``studies`` NB201 tabular searches of ``trials`` trials."""
    start = time.perf_counter()
    url = f"sqlite:///{path}"
    for i in range(studies):
        strategy = STRATEGIES[i % len(STRATEGIES)] if studies > 1 else "random"
        dataset = DATASETS[i % len(DATASETS)]
        name = f"{strategy}-{dataset}-{i:02d}" if studies > 1 else f"random-{trials}"
        study = nasforge.create_study(
            space="nb201",
            strategy=strategy,
            seed=first_seed + i,
            storage=url,
            study_name=name,
            objectives=OBJECTIVES,
            load_if_exists=True,
        )
        evaluator = nasforge.evaluators.create("tabular", benchmark="nb201", dataset=dataset)
        study.optimize(evaluator, n_trials=trials)
        study.storage.close()
        print(f"  {name}: {trials} trials", flush=True)
    return time.perf_counter() - start


class Server:
    """``nasforge dashboard --storage URL --port 0`` in a fresh process, as a person starts it:
    its caches empty and the modules it reads the studies with not yet loaded (a server in
    this process would find them loaded by the loads before). Stopped with Ctrl-C."""

    warm = True  # read the studies at start, as serve() does (--no-warm-up: not)

    def __init__(self, url: str) -> None:
        if self.warm:
            command = [sys.executable, "-m", "nasforge", "dashboard", "--storage", url]
            command += ["--port", "0"]
        else:  # serve() with its reading at start turned off
            command = [sys.executable, __file__, "--serve", url, "--no-warm-up"]
        self.process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
        assert self.process.stderr is not None
        lines = []
        for line in self.process.stderr:  # serve() prints the address once the port listens
            lines.append(line)
            found = re.search(r" at (http://\S+/) ", line)
            if found is not None:
                self.url = found.group(1)
                break
        else:
            self.process.wait()
            raise RuntimeError("the dashboard did not start:\n" + "".join(lines))
        # keep reading its stderr, so that a warning it prints later never blocks it
        threading.Thread(target=self.process.stderr.read, daemon=True).start()

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        self.process.wait(60)


def serve_only(url: str, warm_up: bool) -> None:
    """``--serve URL``: what ``nasforge dashboard`` runs, here with or without the reading of
    the studies at start."""
    from nasforge.dashboard import _server, serve

    if not warm_up:
        _server.warm_up = lambda data, *args, **kwargs: None  # type: ignore[assignment]
    serve(url, port=0)


def load(page: Any, url: str, view: str, timeout: float = 60.0) -> dict[str, float]:
    """Navigate to ``url`` (a full load) and time it until ready = ``view``."""
    page.goto("about:blank")
    page.goto(url, wait_until="commit")
    page.wait_for_function(
        "view => window.__nfReady && view in window.__nfReady", arg=view, timeout=timeout * 1e3
    )
    timing = page.evaluate(
        """view => {
        const ready = window.__nfReady[view];
        const api = performance.getEntriesByType("resource")
          .filter(e => e.name.includes("/api/") && e.responseEnd <= ready);
        const end = Math.max(0, ...api.map(e => e.responseEnd));
        return {ready: ready, api_end: end,
                api: api.map(e => [new URL(e.name).pathname, e.duration, e.transferSize])};
        }""",
        view,
    )
    return {
        "seconds": timing["ready"] / 1e3,
        "api_seconds": max((d for _, d, _ in timing["api"]), default=0.0) / 1e3,
        "render_seconds": (timing["ready"] - timing["api_end"]) / 1e3,
        "api": timing["api"],
    }


def measure(
    browser: Any, url: str, route: str, view: str, repeats: int, after: float, cold_repeats: int
) -> dict[str, Any]:
    """Loads of ``route``: cold at once (a fresh server, asked the moment it listens; the
    median of ``cold_repeats`` fresh servers), cold
    ``after`` seconds after the start (as a person opens the printed address; ``serve`` reads
    the studies meanwhile), and warm (median of ``repeats`` reloads)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.add_init_script(WATCH)
    page = context.new_page()
    page.goto("about:blank")  # the browser's own start is not the dashboard's
    colds = []
    for _ in range(cold_repeats):  # each on a fresh server
        server = Server(url)
        try:
            colds.append(load(page, server.url + route, view))
        finally:
            server.stop()
    cold = sorted(colds, key=lambda c: c["seconds"])[len(colds) // 2]  # the median one
    server = Server(url)
    try:
        time.sleep(after)
        opened = load(page, server.url + route, view)
        warm = [load(page, server.url + route, view) for _ in range(repeats)]
    finally:
        server.stop()
    context.close()
    median = statistics.median(w["seconds"] for w in warm)
    return {
        "cold": cold["seconds"],
        "colds": [c["seconds"] for c in colds],
        "cold_api": cold["api_seconds"],
        "cold_render": cold["render_seconds"],
        "cold_requests": cold["api"],
        "opened_after": after,
        "cold_opened_after": opened["seconds"],
        "warm_median": median,
        "warm": [w["seconds"] for w in warm],
        "warm_api_median": statistics.median(w["api_seconds"] for w in warm),
        "warm_render_median": statistics.median(w["render_seconds"] for w in warm),
    }


def data_layer(url: str, name: str | None) -> dict[str, float]:
    """Seconds of the data layer and of JSON alone, and the answer's size."""
    data = DashboardData(url)
    try:

        def produce() -> Any:
            return data.overview() if name is None else data.study(name)

        start = time.perf_counter()
        produce()
        cold = time.perf_counter() - start
        times = []
        for _ in range(5):
            start = time.perf_counter()
            payload = produce()
            times.append(time.perf_counter() - start)
        start = time.perf_counter()
        body = json.dumps(payload, allow_nan=False, separators=(",", ":")).encode()
        encode = time.perf_counter() - start
    finally:
        data.close()
    return {
        "cold": cold,
        "warm_median": statistics.median(times),
        "json_seconds": encode,
        "bytes": len(body),
        "gzip_bytes": len(gzip.compress(body, 6)),
    }


def report(url: str, name: str, out: Path, browser: Any) -> dict[str, Any]:
    start = time.perf_counter()
    path = write_report(url, [name], out / "report.html")
    seconds = time.perf_counter() - start
    size = path.stat().st_size
    context = browser.new_context(offline=True)
    blocked: list[str] = []

    def block(route: Any) -> None:
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", block)
    context.add_init_script(WATCH)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    from urllib.parse import quote

    try:
        opened = load(page, path.as_uri() + "#/study/" + quote(name, safe=""), "study")
        count = page.text_content("#nf-trial-count")
        ok = not blocked and not errors
    except Exception as exc:  # a page that never gets ready: report it, do not crash
        opened, count, ok = {"seconds": None}, None, False
        errors.append(f"{type(exc).__name__}: {exc}")
    context.close()
    return {
        "path": str(path),
        "bytes": size,
        "mb": size / 1e6,
        "write_seconds": seconds,
        "opens_offline": ok,
        "offline_load_seconds": opened["seconds"],
        "trial_count_shown": count,
        "blocked_requests": blocked,
        "errors": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/work/ref/issue23/dashboard_load"))
    parser.add_argument("--studies", type=int, default=20)
    parser.add_argument("--trials", type=int, default=500, help="trials per study of MANY")
    parser.add_argument("--big", type=int, default=10_000, help="trials of the study of BIG")
    parser.add_argument("--repeats", type=int, default=5, help="warm loads (median)")
    parser.add_argument(
        "--after", type=float, default=2.0, help="seconds before the 'opened after' load"
    )
    parser.add_argument(
        "--cold-repeats", type=int, default=3, help="fresh servers for the cold load (median)"
    )
    parser.add_argument(
        "--no-warm-up", action="store_true", help="serve without reading the studies at start"
    )
    parser.add_argument("--reuse", action="store_true", help="reuse the storages in OUT")
    parser.add_argument("--smoke", action="store_true", help="4 x 50 trials, BIG 500")
    parser.add_argument("--serve", metavar="URL", help=argparse.SUPPRESS)  # a server process
    args = parser.parse_args()
    if args.serve:
        serve_only(args.serve, not args.no_warm_up)
        return
    if args.smoke:
        args.studies, args.trials, args.big, args.repeats, args.cold_repeats = 4, 50, 500, 2, 1
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    many, big = out / "many.db", out / "big.db"
    built = {}
    for path, studies, trials, seed in (
        (many, args.studies, args.trials, 0),
        (big, 1, args.big, 100),
    ):
        if args.reuse and path.exists():
            continue
        path.unlink(missing_ok=True)
        print(f"building {path.name}: {studies} x {trials} trials", flush=True)
        built[path.name] = build(path, studies, trials, seed)
    many_url, big_url = f"sqlite:///{many}", f"sqlite:///{big}"
    Server.warm = not args.no_warm_up
    names = [r.name for r in nasforge.storage.get_storage(many_url, read_only=True).list_studies()]
    big_name = nasforge.storage.get_storage(big_url, read_only=True).list_studies()[0].name
    small_name = names[0]

    from urllib.parse import quote

    from playwright.sync_api import sync_playwright

    results: dict[str, Any] = {
        "settings": vars(args) | {"out": str(out)},
        "build_seconds": built,
        "targets": TARGETS,
        "data_layer": {
            "overview": data_layer(many_url, None),
            "study_500": data_layer(many_url, small_name),
            "study_big": data_layer(big_url, big_name),
        },
    }
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        results["browser"] = {
            "version": browser.version,
            "overview": measure(
                browser, many_url, "#/", "overview", args.repeats, args.after, args.cold_repeats
            ),
            "study_500": measure(
                browser,
                many_url,
                "#/study/" + quote(small_name, safe=""),
                "study",
                args.repeats,
                args.after,
                args.cold_repeats,
            ),
            "study_big": measure(
                browser,
                big_url,
                "#/study/" + quote(big_name, safe=""),
                "study",
                args.repeats,
                args.after,
                args.cold_repeats,
            ),
        }
        results["report"] = report(big_url, big_name, out, browser)
        browser.close()
    (out / "results.json").write_text(json.dumps(results, indent=2))
    show(results, len(names), small_name, big_name)


def show(results: dict[str, Any], n_studies: int, small: str, big: str) -> None:
    page = results["browser"]
    print(f"\nChromium {page['version']}; times from navigation start to body.dataset.ready")
    rows = [
        (f"first page ({n_studies} studies)", "overview", page["overview"]),
        (f"study page, {small}", "study", page["study_500"]),
        (f"study page, {big}", "study", page["study_big"]),
    ]
    after = page["overview"]["opened_after"]
    servers = len(page["overview"]["colds"])
    print(
        f"{'page':<40}{'cold':>7}{f'+{after:.0f}s':>7}{'warm':>7}{'api':>7}{'render':>7}"
        "  target (cold)"
    )
    for label, kind, row in rows:
        print(
            f"{label:<40}{row['cold']:>6.2f}s{row['cold_opened_after']:>6.2f}s"
            f"{row['warm_median']:>6.2f}s{row['warm_api_median']:>6.2f}s"
            f"{row['warm_render_median']:>6.2f}s"
            f"  <= {TARGETS[kind]:.0f} s {'ok' if row['cold'] <= TARGETS[kind] else 'MISSED'}"
        )
    print(
        f"cold: asked the moment a fresh nasforge dashboard process prints its address "
        f"(median of {servers} processes); "
        f"+{after:.0f}s: asked {after:.0f} s after it started (the studies read meanwhile); "
        "warm: median of reloads; api / render: the "
        "slowest API answer / ready minus the last answer's end (warm)"
    )
    print("cold, split:")
    for label, _, row in rows:
        print(f"  {label:<38} api {row['cold_api']:.2f} s, render {row['cold_render']:.2f} s")
    print("\ndata layer (Python, no HTTP):")
    for key, row in results["data_layer"].items():
        print(
            f"  {key:<12} cold {row['cold']:.3f} s, warm {row['warm_median']:.3f} s, json "
            f"{row['json_seconds']:.3f} s, {row['bytes'] / 1e6:.2f} MB "
            f"({row['gzip_bytes'] / 1e6:.2f} MB gzip)"
        )
    rep = results["report"]
    print(
        f"\nreport.html of {big}: {rep['mb']:.2f} MB (target <= {TARGETS['report_mb']:.0f} MB "
        f"{'ok' if rep['mb'] <= TARGETS['report_mb'] else 'MISSED'}), written in "
        f"{rep['write_seconds']:.1f} s; opens offline: {'yes' if rep['opens_offline'] else 'NO'}"
        + (f" (ready in {rep['offline_load_seconds']:.2f} s)" if rep["opens_offline"] else "")
    )


if __name__ == "__main__":
    main()

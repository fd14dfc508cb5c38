"""The dashboard and the HTML report: see the search in a browser.

:func:`serve` runs a web page over a storage (``nasforge dashboard --storage URL``): every
study with its trials by state and best so far; one study's trial table, best-so-far
trajectories, objective scatter with its Pareto front, decision importance, failures, the
drawing of any architecture and, for one-shot studies, the architecture weights per epoch;
and the comparison harness's results. The page polls the server every 2 s, so trials that
workers finish appear without a reload. The server only reads the storage.

:func:`write_report` writes the same views as one HTML file that opens offline
(``nasforge report STUDY --out report.html``).

The page, its charts and its drawings are the package's own files (``static/``); nothing is
fetched from the internet. The server needs starlette and uvicorn, which are imported when
:func:`create_app` or :func:`serve` is called, not when this package is imported.

Example:
    >>> import os, tempfile
    >>> import nasforge
    >>> from nasforge.dashboard import write_report
    >>> url = "sqlite:///" + os.path.join(tempfile.mkdtemp(), "runs.db")
    >>> study = nasforge.create_study(
    ...     space="nb201", strategy="random", storage=url, study_name="rs"
    ... )
    >>> _ = study.optimize(nasforge.evaluators.create("tabular", benchmark="nb201"), budget=20)
    >>> path = write_report(url, ["rs"], os.path.join(tempfile.mkdtemp(), "report.html"))
    >>> path.name
    'report.html'
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from nasforge.dashboard._data import DashboardData
from nasforge.dashboard.report import write_report

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from nasforge.storage import Storage

__all__ = ["DashboardData", "create_app", "serve", "write_report"]


def create_app(data: DashboardData, *, allowed_hosts: Sequence[str] | None = None) -> Starlette:
    """The dashboard's ASGI application (Starlette) over ``data``; run it with any ASGI server.

    Args:
        data: What the pages show (the application only reads it).
        allowed_hosts: ``Host`` header values answered (others get a 400); ``None``: all.

    Routes: ``/`` (the page), ``/static/<file>``, ``/api/overview``,
    ``/api/study/<name>?known=&seq=``, ``/api/study/<name>/trial/<number>`` and
    ``/api/comparisons``; a study that is not (or no longer) stored answers 404 with
    ``{"error": "not_found", "message": ...}``.
    """
    from nasforge.dashboard._server import create_app as _create_app

    return _create_app(data, allowed_hosts=allowed_hosts)


def serve(
    storage: str | Storage,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    comparisons: Sequence[str | Path] = (),
    open_browser: bool = False,
) -> None:
    """Serve the dashboard of ``storage`` until Ctrl-C, then return (SIGTERM stops it too,
    after the answers in progress, and ends the process as SIGTERM does).

    The storage is opened read-only first, then the port is bound, then the page's address
    is printed on stderr (and opened in the default browser with ``open_browser``) while the
    studies are read into memory in the background. Requests are not logged. On another
    host than a loopback address anyone who can reach the machine can read every study:
    there is no password, and a warning says so.

    Args:
        storage: A storage URL (``sqlite:///runs.db``, ``postgresql+psycopg://...``) or an
            open storage.
        host: The address to listen on; ``127.0.0.1`` (the default) is this machine only,
            ``0.0.0.0`` every network interface.
        port: The TCP port; 0 lets the system pick a free one.
        comparisons: Folders written by ``nasforge compare --out DIR`` to show beside the
            studies.
        open_browser: Open the page in the default web browser.

    Raises:
        StorageError: The storage cannot be read (the message hides the password).
        InvalidConfigError: The port is in use (the message names a free one), ``host`` is
            not an address of this machine, or a comparison folder cannot be read.
    """
    import uvicorn

    from nasforge.dashboard import _server

    data = DashboardData(storage, comparisons=comparisons)
    try:
        sock = _server.bind(host, port)
        port = int(sock.getsockname()[1])
        loopback = _server.is_loopback(host)
        app = _server.create_app(data, allowed_hosts=_server.LOOPBACK_NAMES if loopback else None)
        config = uvicorn.Config(
            app,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
            server_header=False,
        )
        url = _server.page_url(host, port)
        if not loopback:
            _say(
                f"warning: listening on {host}: anyone who can reach this machine on port {port} "
                "can read every study in the storage; there is no password. Use the default "
                "--host 127.0.0.1 (and an SSH tunnel) unless the network is trusted."
            )
        _say(f"Dashboard of {data.storage_label} at {url} (Ctrl-C stops it)")
        if open_browser:
            import webbrowser

            webbrowser.open(url)  # the socket listens already: the page waits for the server
        _server.warm_up(data)
        try:
            uvicorn.Server(config).run(sockets=[sock])
        except KeyboardInterrupt:  # uvicorn stops cleanly, then re-raises the Ctrl-C
            pass
        finally:
            sock.close()
    finally:
        data.close()


def _say(message: str) -> None:
    """A line on stderr: the one thing a server started from Python must tell its user."""
    print(message, file=sys.stderr, flush=True)

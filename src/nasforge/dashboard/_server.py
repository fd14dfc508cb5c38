"""The dashboard's web server: a Starlette application over :class:`DashboardData`, served by
uvicorn on a socket bound here (so that a port in use is one clear error, not a traceback).

The routes (every API answer is JSON, never cached, gzip-compressed when large):

- ``GET /``: the page (``static/index.html``); ``GET /static/<file>``: its scripts and style.
- ``GET /api/overview``: :meth:`DashboardData.overview`.
- ``GET /api/study/<name>?known=&seq=&detail=``: :meth:`DashboardData.study` (a delta when
  the client sends back the ``version`` it holds, without the summaries when it sends back a
  ``detail_token`` still current); 404 ``{"error": "not_found", "message": ...}`` for a
  study that is not (or no longer) in the storage.
- ``GET /api/study/<name>/trial/<number>``: :meth:`DashboardData.trial`; 404 likewise.
- ``GET /api/comparisons``: :meth:`DashboardData.comparisons`.
- ``GET /api/info``: ``{"storage": <the URL, password hidden>}`` for the page's header, read
  from no study (every page asks for it, and it must not wait behind a study being read).

The endpoints are plain functions: Starlette runs them in its thread pool, and
:class:`DashboardData` is thread-safe. Nothing here writes to the storage.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from nasforge.dashboard.report import static_files
from nasforge.errors import InvalidConfigError, NasforgeError, UnknownNameError

if TYPE_CHECKING:
    from nasforge.dashboard._data import DashboardData

__all__ = [
    "LOOPBACK_NAMES",
    "bind",
    "create_app",
    "free_port",
    "host_name",
    "is_loopback",
    "page_url",
    "warm_up",
]

logger = logging.getLogger(__name__)

#: Host names a dashboard bound to a loopback address answers to (any other ``Host`` header
#: is refused, so that a web page elsewhere cannot reach it through DNS rebinding).
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")

#: Answers of the API are never cached: the page polls them while workers run.
_NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
#: The page runs only its own scripts and talks only to this server.
_PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
_PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": _PAGE_POLICY,
    "X-Content-Type-Options": "nosniff",
}
#: Bytes from which an answer is compressed, at level 1: a 10,000-trial study page (2.6 MB)
#: shrinks to 0.55 MB in 0.03 s, where level 9 gives 0.36 MB in 0.18 s of the page's load.
_GZIP_FROM = 1024


#: Storage errors already logged (the pages poll every 2 s; each is logged once).
_WARNED: set[str] = set()


def _json(payload: Any, status: int = 200) -> Response:
    body = json.dumps(payload, allow_nan=False, separators=(",", ":"), ensure_ascii=False)
    return Response(body, status, headers=_NO_STORE, media_type="application/json")


def _error(status: int, kind: str, message: str) -> Response:
    return _json({"error": kind, "message": message}, status)


def _answer(produce: Callable[[], Any]) -> Response:
    """``produce()`` as JSON; a missing study or trial is a 404, other refusals a 400 and a
    storage that cannot be read a 503, each with a one-line message."""
    try:
        return _json(produce())
    except UnknownNameError as exc:  # StudyNotFoundError: a study not (or no longer) stored
        return _error(404, "not_found", str(exc))
    except InvalidConfigError as exc:
        return _error(400, "bad_request", str(exc))
    except NasforgeError as exc:  # the database went away, a corrupt file...
        if str(exc) not in _WARNED:  # once, not at every poll of every open page
            _WARNED.add(str(exc))
            logger.warning("dashboard: %s", exc)
        return _error(503, "storage", str(exc))


def _whole_number(request: Request, key: str) -> int:
    text = request.query_params.get(key, "0") or "0"
    try:
        value = int(text)
    except ValueError:
        raise InvalidConfigError(f"Query parameter {key}={text!r} is not a whole number.") from None
    if value < 0:
        raise InvalidConfigError(f"Query parameter {key}={value} is negative.")
    return value


def _study_path(request: Request) -> list[str]:
    """The parts of the path after ``/api/study/``, each percent-decoded on its own, so that a
    study name holding ``/`` (sent as ``%2F``) stays one part."""
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) else request.url.path
    path = path.split("?", 1)[0]
    tail = path.split("/api/study/", 1)[1] if "/api/study/" in path else ""
    return [unquote(part, errors="strict") for part in tail.split("/")]


def host_name(header: str) -> str:
    """The host of a ``Host`` header without its port, lower case: ``[::1]:8080`` ->
    ``[::1]``, ``Localhost:8080`` -> ``localhost``."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[: header.find("]") + 1]
    return header.split(":", 1)[0]


class _HostCheck:
    """Answers 400 to a request whose ``Host`` names none of ``allowed``, so that a web page
    elsewhere cannot reach a loopback server through DNS rebinding. (Starlette's
    TrustedHostMiddleware reads ``[::1]:8080`` as ``[`` in versions this package accepts,
    0.37 to 1.0 at least, refusing every request to ``--host ::1``.)"""

    def __init__(self, app: ASGIApp, allowed: Sequence[str]) -> None:
        self.app = app
        self.allowed = frozenset(name.lower() for name in allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            header = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
            if host_name(header) not in self.allowed:
                refused = Response("Invalid host header", 400, media_type="text/plain")
                await refused(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(data: DashboardData, *, allowed_hosts: Sequence[str] | None = None) -> Starlette:
    """The dashboard's ASGI application over ``data`` (see the module docstring for the routes).

    Args:
        data: The storage's dashboard data; the application only reads it.
        allowed_hosts: ``Host`` header values the application answers (others get a 400);
            ``None`` answers every host. :func:`~nasforge.dashboard.serve` passes
            :data:`LOOPBACK_NAMES` when it listens on a loopback address.
    """
    index = static_files() / "index.html"

    def page(request: Request) -> Response:
        # read per request, as the scripts are: a server left running across an upgrade of
        # nasforge serves a page and scripts of one version
        return Response(
            index.read_text(encoding="utf-8"), headers=_PAGE_HEADERS, media_type="text/html"
        )

    def overview(request: Request) -> Response:
        return _answer(data.overview)

    def info(request: Request) -> Response:
        # the header's storage label, without reading a study (every page asks for it)
        return _json({"storage": data.storage_label})

    def no_icon(request: Request) -> Response:
        return Response(status_code=204)

    def comparisons(request: Request) -> Response:
        return _answer(data.comparisons)

    def study(request: Request) -> Response:
        try:
            parts = _study_path(request)
        except UnicodeDecodeError:
            return _error(400, "bad_request", "The study name in the address is not UTF-8.")
        name = parts[0]
        if len(parts) == 1 and name:
            return _answer(
                lambda: data.study(
                    name,
                    known=_whole_number(request, "known"),
                    seq=_whole_number(request, "seq"),
                    detail=request.query_params.get("detail"),
                )
            )
        if len(parts) == 3 and name and parts[1] == "trial" and parts[2].isdigit():
            return _answer(lambda: data.trial(name, int(parts[2])))
        return _error(404, "not_found", f"No such address: {request.url.path}")

    routes = [
        Route("/", page),
        Route("/index.html", page),
        Route("/api/overview", overview),
        Route("/api/info", info),
        Route("/favicon.ico", no_icon),
        Route("/api/comparisons", comparisons),
        Route("/api/study/{rest:path}", study),
        Mount("/static", StaticFiles(packages=[("nasforge.dashboard", "static")]), name="static"),
    ]
    middleware = [Middleware(GZipMiddleware, minimum_size=_GZIP_FROM, compresslevel=1)]
    if allowed_hosts is not None:
        middleware.insert(0, Middleware(_HostCheck, allowed=list(allowed_hosts)))
    return Starlette(routes=routes, middleware=middleware)


#: How many study pages :func:`warm_up` prepares (those with the latest finished trials).
WARM_STUDIES = 5
#: Seconds :func:`warm_up` waits before reading. None: each study has its own lock in
#: :class:`DashboardData`, so a page asked for the moment the server listens (a tab left open,
#: ``--open``) waits at most for its own study being read, and the first page finds part of
#: the reading done (measured cold on 20 studies of 10,000 trials: 0.74 s, 0.95 s with 0.5).
WARM_DELAY = 0.0


def warm_up(
    data: DashboardData, studies: int = WARM_STUDIES, delay: float = WARM_DELAY
) -> threading.Thread:
    """After ``delay`` seconds, read every study once in a background thread, then prepare
    the pages of the ``studies`` studies whose trials finished last, so that the page a
    person opens from the printed address a moment later is answered from memory. A request
    that comes during the reading waits for the part being read instead of reading it again."""

    def read() -> None:
        time.sleep(delay)
        try:
            rows = data.overview()["studies"]
            latest = sorted(rows, key=lambda row: row.get("last_finish_at") or "", reverse=True)
            for row in latest[:studies]:
                data.study(row["name"])
        except Exception as exc:  # the requests will say what is wrong; the server runs on
            logger.debug("dashboard: reading the studies at start failed: %s", exc)

    thread = threading.Thread(target=read, name="nasforge-dashboard-warm-up", daemon=True)
    thread.start()
    return thread


# -- the socket --------------------------------------------------------------------------------
def _address(host: str, port: int) -> tuple[Any, ...]:
    """``(family, sockaddr)`` of ``host``; a name that does not resolve is refused."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        raise InvalidConfigError(
            f"--host {host!r} is not an address of this machine ({exc}); pass --host 127.0.0.1 "
            "(this machine only) or an address of one of its network interfaces."
        ) from None
    family, _, _, _, sockaddr = found[0]
    return family, sockaddr


def is_loopback(host: str) -> bool:
    """Whether ``host`` resolves to a loopback address (``127.0.0.1``, ``::1``, ``localhost``):
    only programs on this machine can reach a server listening there."""
    try:
        _, sockaddr = _address(host, 0)
        return ipaddress.ip_address(sockaddr[0].split("%", 1)[0]).is_loopback
    except (InvalidConfigError, ValueError):
        return False


def _try_bind(host: str, port: int) -> socket.socket:
    family, sockaddr = _address(host, port)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(sockaddr)
    except BaseException:
        sock.close()
        raise
    return sock


def free_port(host: str, start: int, tries: int = 100) -> int:
    """A port after ``start`` that can be bound on ``host`` now (the next free one within
    ``tries``, else one the system picks)."""
    for port in range(start + 1, min(start + 1 + tries, 65536)):
        try:
            _try_bind(host, port).close()
            return port
        except OSError:
            continue
    with _try_bind(host, 0) as sock:
        return int(sock.getsockname()[1])


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (``port=0``: a free port the system picks).

    Raises:
        InvalidConfigError: The port is out of range, in use (the message names a free one),
            reserved for the administrator, or ``host`` is not an address of this machine.
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise InvalidConfigError(
            f"--port must be a whole number from 1 to 65535 (0: any free port), got {port!r}."
        )
    try:
        sock = _try_bind(host, port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise InvalidConfigError(
                f"Port {port} on {host} is in use; pass --port {free_port(host, port)} (free "
                "now) or stop the program that holds it."
            ) from None
        if exc.errno == errno.EACCES:
            raise InvalidConfigError(
                f"Port {port} on {host} needs administrator rights; pass --port "
                f"{free_port(host, max(port, 8079))}."
            ) from None
        raise InvalidConfigError(
            f"Cannot listen on {host} port {port}: {exc.strerror or exc}; pass --host "
            "127.0.0.1 (this machine only) or an address of one of its network interfaces."
        ) from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


def page_url(host: str, port: int) -> str:
    """The address to open in a browser for a server on ``host``:``port``."""
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}/"

"""A throwaway PostgreSQL server for tests and benchmarks of PostgreSQL storage.

:class:`TemporaryPostgres` runs ``initdb`` in a new temporary folder and starts ``postgres``
on a free local port (trust authentication, reachable from this machine only); leaving the
``with`` block stops it and deletes the folder. The server binaries come from the
distribution's ``postgresql`` package (``apt-get install postgresql``): they are looked up on
``PATH`` and in ``/usr/lib/postgresql/<version>/bin``. PostgreSQL refuses to run as root, so
as root the server runs as the ``postgres`` user (through ``runuser``).

Example:
    >>> from nasforge.testing.postgres import TemporaryPostgres, find_binaries
    >>> if find_binaries() is not None:  # doctest: +SKIP
    ...     with TemporaryPostgres() as url:
    ...         storage = nasforge.storage.get_storage(url)
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from nasforge.errors import MissingDependencyError

__all__ = ["TemporaryPostgres", "find_binaries", "unavailable_reason"]


def find_binaries() -> Path | None:
    """The folder holding ``initdb``, ``pg_ctl`` and ``postgres``, or ``None``."""
    initdb = shutil.which("initdb")
    candidates = [Path(os.path.realpath(initdb)).parent] if initdb else []
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
    )
    candidates += [Path(p) for p in reversed(versions)]
    for folder in candidates:
        if all((folder / name).exists() for name in ("initdb", "pg_ctl", "postgres")):
            return folder
    return None


def unavailable_reason() -> str | None:
    """Why a temporary server cannot run here (``None`` when it can)."""
    if find_binaries() is None:
        return (
            "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found; install them "
            "with: apt-get install postgresql"
        )
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "the psycopg driver is not installed: pip install 'nasforge[postgres]'"
    if os.geteuid() == 0 and (shutil.which("runuser") is None or not _user_exists("postgres")):
        return "running as root, and no 'postgres' user and runuser to start the server as"
    return None


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TemporaryPostgres:
    """Start a PostgreSQL server in a temporary folder; ``with`` gives its SQLAlchemy URL.

    Args:
        database: Name of the database created for the caller.

    Raises:
        MissingDependencyError: No server binaries or no driver (see
            :func:`unavailable_reason`).
    """

    def __init__(self, database: str = "nasforge") -> None:
        reason = unavailable_reason()
        if reason is not None:
            raise MissingDependencyError(f"Cannot start a PostgreSQL server: {reason}.")
        self.bin = find_binaries()
        self.database = database
        self.port = 0
        self.folder: str | None = None
        self.url = ""

    def _cmd(self, *args: str) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *args]
        return list(args)

    def start(self) -> str:
        assert self.bin is not None
        self.folder = tempfile.mkdtemp(prefix="nasforge-pg-")
        data = os.path.join(self.folder, "data")
        if os.geteuid() == 0:
            import pwd

            user = pwd.getpwnam("postgres")
            os.chown(self.folder, user.pw_uid, user.pw_gid)
        run = {"check": True, "capture_output": True, "text": True}
        subprocess.run(
            self._cmd(str(self.bin / "initdb"), "-D", data, "-A", "trust", "-U", "postgres"),
            **run,  # type: ignore[call-overload]
        )
        for _ in range(5):  # another process may take the free port first
            self.port = _free_port()
            options = (
                f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
                "-c max_connections=200 -c shared_buffers=32MB"
            )
            started = subprocess.run(
                self._cmd(
                    str(self.bin / "pg_ctl"),
                    "-D",
                    data,
                    "-o",
                    options,
                    "-l",
                    os.path.join(self.folder, "log"),
                    "-w",
                    "-t",
                    "60",
                    "start",
                ),
                capture_output=True,
                text=True,
            )
            if started.returncode == 0:
                break
        else:
            log = Path(self.folder, "log")
            tail = log.read_text()[-2000:] if log.exists() else started.stderr
            self.stop()
            raise RuntimeError(f"PostgreSQL did not start: {tail}")
        self._create_database()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{self.database}"
        return self.url

    def _create_database(self) -> None:
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(
                    host="127.0.0.1", port=self.port, user="postgres", dbname="postgres"
                ) as conn:
                    conn.autocommit = True
                    conn.execute(f'CREATE DATABASE "{self.database}"')
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def reset(self) -> None:
        """Drop and recreate the database (a clean slate between tests)."""
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres"
        ) as conn:
            conn.autocommit = True
            conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{self.database}"')

    def stop(self) -> None:
        if self.folder is None:
            return
        data = os.path.join(self.folder, "data")
        if self.bin is not None and os.path.exists(os.path.join(data, "postmaster.pid")):
            subprocess.run(
                self._cmd(str(self.bin / "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop"),
                capture_output=True,
            )
        with contextlib.suppress(OSError):
            shutil.rmtree(self.folder)
        self.folder = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

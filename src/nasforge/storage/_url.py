"""Storage URLs: checked before SQLAlchemy sees them, and never shown with their password.

:func:`parse_url` refuses a malformed URL with one line saying what is wrong and how to write
it (a bad port, unbalanced brackets, an unknown database or driver, ``://`` missing...).
:func:`mask` hides the password of any text that looks like a URL, also of one that cannot be
parsed: every message, log line and ``repr`` that names a storage goes through it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from nasforge.errors import StorageError

__all__ = ["EXAMPLES", "ParsedURL", "mask", "parse_url", "scrub"]

EXAMPLES = (
    "'sqlite:///study.db' (a file), 'sqlite:////abs/path/study.db' or "
    "'postgresql+psycopg://user:password@host:5432/db'"
)

#: Database kinds and the drivers nasforge can use for them ("" = the default driver).
DRIVERS = {"sqlite": ("", "pysqlite"), "postgresql": ("", "psycopg", "psycopg2")}
_ALIASES = {"postgres": "postgresql"}

_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://")
_LOOSE_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:(//?)?")
_LOOSE_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*[:/]+")
_USERINFO = re.compile(r"(?P<user>[^:/@?]*)(?::(?P<password>[^@]*))?@")
_QUERY_SECRET = re.compile(
    r"(?i)(?P<key>(?:^|[?&;\s])(?:ssl)?(?:password|passwd|pwd)=)(?P<value>[^&;#\s]*)"
)
# in a URL, a password option may hold '&', '#' or spaces: hide everything after it, also
# after a misspelt one ("pass#word", "passwor&d")
_URL_QUERY_SECRET = re.compile(r"(?i)(?P<key>[?&;](?:ssl)?(?:password|passwd|pwd)=)(?P<value>.*)$")
_FUZZY_SECRET = re.compile(r"(?i)p\W*a\W*s\W*s|p\W*w\W*d")
_PASSWORD_WORD = re.compile(r"(?i)(?P<key>\bpassword\s*[=:]\s*)(?P<value>\S+)")


def mask(text: str) -> str:
    """``text`` with the password of the URL in it replaced by ``***``.

    Works on malformed URLs too: everything up to the last ``@`` that may be a password is
    hidden (a password may hold ``:``, ``/`` or ``@``), as is everything after a query
    option named ``password``. It hides too much rather than too little.
    """
    return _split_userinfo(_mask_query(text)[0])[0]


def _mask_query(text: str) -> tuple[str, str]:
    """``text`` with the values of password options hidden, and the hidden part."""
    found = _URL_QUERY_SECRET.search(text)
    if found:
        return text[: found.start("value")] + "***", found.group("value")
    question = text.find("?")
    fuzzy = _FUZZY_SECRET.search(text, question + 1) if question >= 0 else None
    if fuzzy is None:
        return text, ""
    return text[: fuzzy.start()] + "***", text[fuzzy.start() :]


def _split_userinfo(text: str) -> tuple[str, str]:
    """``text`` with its password hidden, and the hidden part.

    After a known ``kind://`` the user name (before the first ``:``) stays visible; in any
    other text everything from the first run of ``:`` or ``/`` to the last ``@`` is hidden.
    """
    at = text.rfind("@")
    if at < 0:
        return text, ""
    proper = _SCHEME.match(text)
    kind = proper.group("scheme").partition("+")[0].lower() if proper else ""
    if proper and (kind in DRIVERS or kind in _ALIASES):
        start = proper.end()
        userinfo = text[start:at]
        colon = userinfo.find(":")
        if colon >= 0:
            return text[: start + colon + 1] + "***" + text[at:], userinfo[colon + 1 :]
        if "/" not in userinfo:
            return text, ""  # a user name alone, no password
    else:
        loose = _LOOSE_PREFIX.match(text)
        start = loose.end() if loose and loose.end() <= at else 0
    return text[:start] + "***" + text[at:], text[start:at]


def scrub(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` (a database's own error message) with every secret and anything written
    ``password=...`` hidden."""
    for secret in secrets:
        if len(secret) >= 3:
            text = text.replace(secret, "***")
    text = _QUERY_SECRET.sub(lambda m: m.group("key") + "***", text)
    return _PASSWORD_WORD.sub(lambda m: m.group("key") + "***", text)


@dataclass(frozen=True)
class ParsedURL:
    """A checked storage URL: SQLAlchemy's ``url``, ``backend`` (``"sqlite"`` or
    ``"postgresql"``), the ``display`` form (password hidden) and the ``secrets`` to hide
    from database messages."""

    url: Any
    backend: str
    display: str
    secrets: tuple[str, ...] = field(default=(), repr=False)


def _refuse(url: str, problem: str, fix: str) -> StorageError:
    return StorageError(f"Malformed storage URL {_short(mask(url))!r}: {problem}; {fix}.")


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _secrets(url: str) -> tuple[str, ...]:
    """Everything in ``url`` that may be a password, for scrubbing driver messages."""
    out = []
    for hidden in (_split_userinfo(url)[1], _mask_query(url)[1]):
        out += [hidden, unquote(hidden)]
        out += [p for p in re.split(r"[:/@?#&=;%\[\]\s]+", hidden) if len(p) >= 4]
    for m in _QUERY_SECRET.finditer(url):
        out += [m.group("value"), unquote(m.group("value"))]
    return tuple(sorted({s for s in out if s}, key=len, reverse=True))


def parse_url(url: Any) -> ParsedURL:
    """Check a storage URL and parse it with SQLAlchemy.

    Raises:
        StorageError: The URL is malformed, names a database other than SQLite and
            PostgreSQL, or a driver nasforge cannot use; the message shows the URL with
            its password hidden and says how to write it.
    """
    from sqlalchemy.engine import make_url

    if not isinstance(url, str):
        raise StorageError(
            f"A storage URL must be a string, got {type(url).__name__}; write it like {EXAMPLES}."
        )
    _check_characters(url)
    match = _SCHEME.match(url)
    if match is None:
        loose = _LOOSE_SCHEME.match(url)
        scheme = loose.group(0).rstrip(":/") if loose else url.split("/", 1)[0]
        if "//" in url and not loose:
            scheme = url.split("//", 1)[0]
        if ":" not in url and "//" not in url:
            raise _refuse(
                url,
                "it names no database kind",
                f"for a SQLite file write 'sqlite:///' before its path, e.g. {EXAMPLES}",
            )
        problem = (
            f"the database kind {scheme!r} must be followed by '://'"
            if re.fullmatch(r"[A-Za-z][A-Za-z0-9+.\-]*", scheme or "")
            else "it does not start with a database kind and '://'"
        )
        raise _refuse(url, problem, f"write it like {EXAMPLES}")
    scheme = match.group("scheme")
    kind, _, driver = scheme.partition("+")
    backend = _ALIASES.get(kind.lower(), kind.lower())
    if backend not in DRIVERS:
        raise StorageError(
            f"Unsupported storage URL {_short(mask(url))!r} (database {kind!r}); nasforge "
            f"stores studies in SQLite or PostgreSQL, e.g. {EXAMPLES}."
        )
    if driver.lower() not in DRIVERS[backend]:
        names = ", ".join(d for d in DRIVERS[backend] if d)
        raise StorageError(
            f"Unknown driver {driver!r} in storage URL {_short(mask(url))!r}; write "
            f"'{backend}://...' (the default driver) or '{backend}+<driver>://...' with one "
            f"of: {names}."
        )
    rest = url[match.end() :]
    if backend == "sqlite":
        _check_sqlite(url, rest)
    else:
        _check_server(url, rest)
    try:
        parsed = make_url(scheme.lower() + url[len(scheme) :])
    except Exception:  # its message may hold part of the password
        raise _refuse(url, "SQLAlchemy cannot parse it", f"write it like {EXAMPLES}") from None
    # the URL as written: SQLAlchemy's rendering percent-encodes, which mask() cannot see through
    display = mask(url)
    return ParsedURL(url=parsed, backend=backend, display=display, secrets=_secrets(url))


def _check_characters(url: str) -> None:
    if not url.strip():
        raise StorageError(f"The storage URL is empty; write it like {EXAMPLES}.")
    bad = [c for c in url if unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp")]
    if bad:
        raise _refuse(
            url,
            f"it contains the control character {bad[0]!r}",
            "remove it (a line break or tab copied with the URL?)",
        )
    if url != url.strip():
        raise _refuse(url, "it starts or ends with spaces", "remove them")


def _check_sqlite(url: str, rest: str) -> None:
    if rest and not rest.startswith("/"):
        raise _refuse(
            url,
            "a SQLite URL names a file after three slashes, not a host",
            "write 'sqlite:///relative/path.db' or 'sqlite:////absolute/path.db'",
        )
    if re.search(r":.*@", unquote(rest), flags=re.DOTALL):
        raise _refuse(
            url,
            "the file path holds 'user:password@', which belongs in a server URL",
            "for PostgreSQL write 'postgresql+psycopg://user:password@host/db'; for a SQLite "
            "file, choose a path without ':' before '@'",
        )
    if "?" in rest:
        raise _refuse(
            url,
            "SQLite storage URLs take no '?' options",
            "remove the part from '?' on (a '?' in the file name itself is not supported)",
        )


def _check_server(url: str, rest: str) -> None:
    userinfo = _USERINFO.match(rest)
    after = rest[userinfo.end() :] if userinfo else rest
    hostport = re.split(r"[/?]", after, maxsplit=1)[0]
    if "@" in after.split("?", 1)[0]:
        raise _refuse(
            url,
            "it holds an '@' after the user part",
            "write an '@' inside the user name or password as %40",
        )
    host, port = hostport, None
    if host.startswith("["):
        close = host.find("]")
        if close < 0:
            raise _refuse(
                url,
                "the host's '[' has no closing ']'",
                "write an IPv6 host in brackets, like [::1]:5432",
            )
        tail = host[close + 1 :]
        if tail and not tail.startswith(":"):
            raise _refuse(
                url,
                f"unexpected {_short(tail, 40)!r} after the bracketed host",
                "write an IPv6 host with its port like [::1]:5432",
            )
        port = tail[1:] if tail else None
        host = host[1:close]
        if "[" in host or "]" in host:
            raise _refuse(url, "the host has unbalanced brackets", "write it like [::1]:5432")
    elif "]" in host or "[" in host:
        raise _refuse(
            url,
            "the host has unbalanced brackets",
            "write an IPv6 host in brackets, like [::1]:5432",
        )
    elif host.count(":") > 1:
        raise _refuse(
            url,
            "the host holds several ':'",
            "write an IPv6 host in brackets, like [::1]:5432",
        )
    elif ":" in host:
        host, port = host.split(":", 1)
    if port == "":
        raise _refuse(url, "a ':' follows the host but no port", "write host:5432 or only host")
    if port is not None:
        if not port.isascii() or not port.isdigit():
            raise _refuse(
                url,
                f"the port {_short(port, 40)!r} is not a number",
                "write a port from 1 to 65535 after the host, like host:5432, or leave "
                "':port' out for 5432",
            )
        if not 1 <= int(port) <= 65535:
            raise _refuse(
                url,
                f"the port {int(port)} is out of range",
                "ports run from 1 to 65535 (PostgreSQL listens on 5432 by default)",
            )

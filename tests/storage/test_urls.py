"""Storage URLs: every malformed one is refused with one line naming the problem, and no
password ever appears in a message, a log line or a repr (nasforge.storage._url)."""

from __future__ import annotations

import logging
import os
import re
import socket
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nasforge.errors import NasforgeError, StorageError
from nasforge.storage import get_storage, mask_url
from nasforge.storage.rdb import RDBStorage


def _closed_port() -> int:
    with socket.socket() as sock:  # a port where nothing listens
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


PORT = _closed_port()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://u:pw@h:abc/db", "the port 'abc' is not a number"),
        ("postgresql://u:pw@h:99999/db", "the port 99999 is out of range"),
        ("postgresql://u:pw@h:0/db", "the port 0 is out of range"),
        ("postgresql://u:pw@h:/db", "no port"),
        ("postgresql://u:pw@[::1/db", r"'\[' has no closing '\]'"),
        ("postgresql://u:pw@::1]/db", "unbalanced brackets"),
        ("postgresql://u:pw@[::1]x/db", "after the bracketed host"),
        ("postgresql://u:pw@::1/db", "IPv6 host in brackets"),
        ("postgresql+foo://u:pw@h/db", "Unknown driver 'foo'.*psycopg, psycopg2"),
        ("sqlite+foo:///x.db", "Unknown driver 'foo'"),
        ("mysql://u:pw@h/db", "Unsupported storage URL .*database 'mysql'"),
        ("postgresql+psycopg//u:pw@h/db", "'postgresql\\+psycopg' must be followed by '://'"),
        ("postgresql:u:pw@h/db", "'postgresql' must be followed by '://'"),
        ("study.db", "names no database kind.*sqlite:///"),
        ("postgresql://u:p@ss@h/db", "an .@. after the user part.*%40"),
        ("sqlite://host/x.db", "three slashes"),
        ("sqlite:///x.db?mode=ro", "take no '\\?' options"),
        ("sqlite:///x\n.db", "control character"),
        (" sqlite:///x.db", "spaces"),
        ("", "empty"),
    ],
)
def test_malformed_urls_are_refused_with_what_is_wrong(url, message):
    with pytest.raises(StorageError, match=message) as info:
        get_storage(url)
    text = str(info.value)
    assert "\n" not in text
    assert "pw" not in text.replace("password", "")  # the password never shows


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://alice:pw@h/db", "postgresql://alice:***@h/db"),
        ("postgresql+psycopg//alice:pw@h/db", "postgresql+psycopg//***@h/db"),
        ("postgresalice://pw@h/db", "postgresalice://***@h/db"),
        ("postgresql://alice:p:w/x@h/db", "postgresql://alice:***@h/db"),
        ("postgresql://alice:p@w@h/db", "postgresql://alice:***@h/db"),
        ("alice:pw@h/db", "alice:***@h/db"),
        ("postgresql:pw@h/db", "postgresql:***@h/db"),
        ("postgresql://alice@h/db?password=pw", "postgresql://alice@h/db?password=***"),
        ("postgresql://alice@h/db", "postgresql://alice@h/db"),
        ("sqlite:///study.db", "sqlite:///study.db"),
    ],
)
def test_mask_hides_the_password_of_well_formed_and_malformed_urls(url, shown):
    assert mask_url(url) == shown


def test_a_url_that_is_not_text_is_refused():
    with pytest.raises(StorageError, match="must be a string, got int"):
        RDBStorage(5)  # type: ignore[arg-type]


# -- property: any URL either opens or raises a NasforgeError that hides the password ---------

#: Words of a password that never occur in nasforge's messages by chance.
_WORDS = st.text(alphabet="JQXZKVW", min_size=6, max_size=9)
_PUNCT = st.sampled_from([":", "/", "@", "?", "#", "[", "]", "%", "&", "=", " ", ";", "//"])
_PASSWORD = st.lists(st.one_of(_WORDS, _PUNCT), min_size=1, max_size=4).filter(
    lambda parts: any(len(p) >= 6 for p in parts)
)
_SCHEMES = st.sampled_from(
    [
        "postgresql",
        "postgresql+psycopg",
        "postgres",
        "postgresql+psycopg2",
        "postgresql+asyncpg",
        "sqlite",
        "mysql",
        "PostgreSQL",
        "",
    ]
)
_SEPARATORS = st.sampled_from(["://", "//", ":/", ":", ":///", "", "://://"])
_HOSTS = st.sampled_from(["127.0.0.1", "localhost", "[127.0.0.1]", "[::1", "::1]", "::1", ""])
_PORTS = st.sampled_from([f":{PORT}", "", ":abc", ":", ":99999", ":0", ":-1", f":{PORT}:1"])
_DATABASES = st.sampled_from(["/db", "", "/", "/d b", "/db?sslmode=disable", "/db?foo=1"])


@st.composite
def urls_with_passwords(draw):
    parts = draw(_PASSWORD)
    password = "".join(parts)
    if draw(st.booleans()):
        password = quote(password, safe="")
    user = draw(st.sampled_from(["alice", "", "bob smith"]))
    where = draw(st.sampled_from(["userinfo", "query", "both"]))
    userinfo = f"{user}:{password}@" if where != "query" else f"{user}@"
    query = f"password={password}" if where != "userinfo" else ""
    database = draw(_DATABASES)
    if query:
        database = (database or "/db") + ("&" if "?" in database else "?") + query
    url = draw(_SCHEMES) + draw(_SEPARATORS) + userinfo + draw(_HOSTS) + draw(_PORTS) + database
    for position, char in draw(st.lists(st.tuples(st.integers(0, 200), _PUNCT), max_size=2)):
        url = url[:position] + char + url[position:]  # a typo anywhere
    # a secret that ends up written as the user name of a well-formed URL
    # ("postgres:" + "//" + "SECRET@host") is a user name, which messages may show
    user = re.match(r"[A-Za-z][\w+.-]*://(?P<user>[^:/@?]*)[:@]", url)
    shown = user.group("user") if user else ""
    return url, [p for p in parts if len(p) >= 6 and p not in shown]


@pytest.fixture(scope="module", autouse=True)
def _in_a_temporary_folder(tmp_path_factory):
    """Well-formed SQLite URLs with odd names open files: here, not in the checkout."""
    before = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("urls"))
    yield
    os.chdir(before)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(urls_with_passwords())
def test_any_url_opens_or_is_refused_without_its_password(case):
    url, secrets = case
    handler = _Records()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        try:
            storage = RDBStorage(url, retries=1, backoff=0.0)
        except NasforgeError as exc:
            shown = str(exc)
            assert "\n" not in shown
        else:  # pragma: no cover - nothing listens on PORT
            shown = repr(storage) + storage.url
            storage.close()
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    shown += "\n".join(handler.lines)
    for secret in secrets:
        assert secret not in shown, (url, shown)

"""Credentials in URLs: the one rule that keeps them out of everything rlt writes or shows.

Proxies and gateways take credentials in the URL itself, as userinfo
(`http://user:SECRET@host/v1`) or in the query (`?api_key=SECRET`). Such a URL is
shown and recorded with its userinfo and every query value replaced by `***`
(`redact_url`; `redact` does it to every URL inside a text): manifests and progress
records, job specs, `--print-config` (all through `config.to_dict`), log lines and error
messages. Only the request itself uses the credentials.

A config recorded for another process (a Slurm job's spec, a launched rank) holds the
redacted URL; the full one travels in the environment that process inherits
(`RLT_URL_<fingerprint of the redacted URL>`, set by `stash`, what `config.to_dict` does),
and the engine gets it back with `reveal`.

    redact_url("http://u:pw@h:8000/v1?api_key=k&v=2")   # 'http://***@h:8000/v1?api_key=***&v=***'
"""

from __future__ import annotations

import hashlib
import os
import re
from urllib.parse import parse_qsl, urlsplit, urlunsplit

SHOWN = "***"  # what a credential is shown as
ENV_PREFIX = "RLT_URL_"
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def redact_url(url: str) -> str:
    """`url` with its userinfo and every query value (and any fragment) replaced by `***`; other
    URLs unchanged. Which query parameters hold secrets is not guessed: every value is hidden."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not (parts.username or parts.password or parts.query or parts.fragment):
        return url
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{SHOWN}@{host}" if "@" in parts.netloc else host
    query = "&".join(f"{k}={SHOWN}" for k, _ in parse_qsl(parts.query, keep_blank_values=True)) if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, SHOWN if parts.fragment else ""))


def has_credentials(url: str) -> bool:
    """Does `url` carry anything `redact_url` hides?"""
    return isinstance(url, str) and redact_url(url) != url


def redact(text: str) -> str:
    """`text` with every URL in it redacted (`redact_url`): for messages and log lines."""
    if "://" not in text:
        return text
    return _URL.sub(lambda m: redact_url(m.group(0)), text)


def _env_name(redacted: str) -> str:
    return ENV_PREFIX + hashlib.sha256(redacted.encode()).hexdigest()[:16].upper()


def stash(url: str) -> str:
    """The redacted `url`, its full form kept in this process's environment (inherited by the
    processes it starts) for `reveal`; a URL without credentials as it is."""
    shown = redact_url(url)
    if shown != url:
        os.environ[_env_name(shown)] = url
    return shown


def reveal(url: str) -> str | None:
    """The full URL of a redacted one (`stash`), `url` itself when it holds no hidden part, or None
    when its credentials were hidden and are not in the environment (a config copied by hand)."""
    if SHOWN not in url:
        return url
    return os.environ.get(_env_name(url))


def split_query(url: str) -> tuple[str, dict[str, str]]:
    """(the URL without its query, the query's parameters): for clients that append paths to a base URL."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query="", fragment="")), dict(parse_qsl(parts.query, keep_blank_values=True))

"""What kitt prints and writes from outside input: secrets redacted, workflow commands neutralised.

The one place for both rules (docs/architecture.md, "Every secret is masked"):

- :func:`redact_url` is the only URL redactor: ``http://user:pw@host`` becomes
  ``http://<redacted>@host``, IPv6 hosts and ports kept as written (``[::1]:8000``).
  :func:`redact_urls` does it to every URL inside a text (an error message, a log line), and
  :func:`url_secrets` gives what the runner must mask (``::add-mask::``) under GitHub Actions.
- :func:`neutralise` makes a text safe to print in a GitHub Actions log: a line that starts with
  ``::`` (or carries ``##[``, the old form) would be read by the runner as a workflow command
  (``::warning::``, ``::add-mask::``, ``::stop-commands::``...). User input (a model name, a test
  name, a path, an engine's log) can hold a newline, so every line kitt prints passes through
  here; a zero-width space between the colons keeps the text readable and inert.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit, urlunsplit

REDACTED = "<redacted>"
_ZWSP = "\u200b"

# scheme://userinfo@ : the userinfo is everything up to the last @ before the host's end.
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/\s?#]*)@")
_COMMAND_START = re.compile(r"^(\s*):(?=:)")


def redact_url(url: str) -> str:
    """``url`` with its ``user:password@`` replaced by ``<redacted>@``; unchanged without one."""
    try:
        parts = urlsplit(url)
        username = parts.username
    except ValueError:  # an unparseable URL (a bad IPv6 literal, say): redact by pattern
        return redact_urls(url)
    if username is None and "@" not in parts.netloc:
        return url
    netloc = f"{REDACTED}@" + parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def redact_urls(text: str) -> str:
    """Every ``scheme://user:pw@`` inside ``text`` redacted (messages and log lines)."""
    return _URL_CREDENTIALS.sub(lambda m: f"{m.group(1)}{REDACTED}@", text)


def url_secrets(url: str | None) -> list[str]:
    """The credentials in ``url`` (the password, raw and decoded), for ``::add-mask::``."""
    if not url:
        return []
    match = _URL_CREDENTIALS.search(url)
    if not match:
        return []
    userinfo = match.group(2)
    user, sep, password = userinfo.partition(":")
    found = [password, unquote(password)] if sep and password else [user, unquote(user)]
    return sorted({value for value in found if value}, key=len, reverse=True)


def neutralise(text: str) -> str:
    """``text`` with no line the Actions runner would read as a workflow command."""
    if "::" not in text and "##[" not in text:
        return text
    lines = text.splitlines(keepends=True)
    return "".join(
        _COMMAND_START.sub(lambda m: f"{m.group(1)}:{_ZWSP}", line).replace("##[", f"#{_ZWSP}#[") for line in lines
    )


def one_line(text: str) -> str:
    """``text`` on one line: every line break (CR, LF, and Unicode's) folded into a space."""
    return " ".join(str(text).split())


def safe_line(text: str) -> str:
    """One printed line from outside input: credentials redacted, no workflow command."""
    return neutralise(redact_urls(text))

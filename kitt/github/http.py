"""One network policy for kitt's own calls to GitHub: timeouts, retries, backoff and Retry-After.

Every request kitt sends to GitHub decides "try again?" here, so they all behave alike: the REST
calls of kitt's GitHub client (PyGithub: the artifact listings, the pull request lookup, the
comment upsert), through ``kitt.github.client.PolicyRetry``, urllib3's retry hook asking
:meth:`RetryPolicy.wait_before_retry`; the artifact archive's redirect and the artifact upload
(Twirp POSTs and blob PUTs), through :func:`send`. The rules:

- **Idempotent requests** (GET, HEAD, PUT, DELETE, and an edit that sets the same body again)
  are retried on 429, on 5xx and on network errors.
- **Non-idempotent requests** (a POST that creates something) are retried only when the answer
  proves nothing was done: 429, 502 and 503 (a gateway or an overloaded front end refused it),
  and a connection that was never made. After a 500, a 504 or a timeout the server may have
  done the work, so the caller decides: CreateArtifact fails with a message that says so; the
  comment upsert, whose create PyGithub's transport sends only once, lists the comments again
  before any second create (so it may try again after any failure this policy would retry).
- ``Retry-After`` (seconds) is honoured, and a secondary rate limit (403 with ``Retry-After``)
  counts as a 429. A wait longer than ``max_wait_s`` is not waited for: the answer is final.
- Every request has a timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import requests

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
_NOT_PROCESSED = frozenset({429, 502, 503})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry: ``attempts`` tries, waits growing by ``multiplier``."""

    attempts: int = 4
    first_delay_s: float = 1.0
    multiplier: float = 2.0
    max_wait_s: float = 60.0
    timeout_s: float = 60.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def backoff(self, attempt: int) -> float:
        """The wait after failed try number ``attempt`` (0-based) when the server names none."""
        return self.first_delay_s * self.multiplier**attempt

    def wait_before_retry(
        self,
        attempt: int,
        status: int | None,
        headers: Mapping[str, str] | None,
        *,
        idempotent: bool,
        connected: bool = True,
    ) -> float | None:
        """Seconds to wait before trying again after try ``attempt`` failed, or None: do not retry.

        ``status`` is None for a network error; ``connected`` False means the request never
        left (connection refused or the connect timed out), which is safe to retry whatever
        the method.
        """
        if attempt + 1 >= self.attempts:
            return None
        after = retry_after(headers)
        if status is None:
            return self.backoff(attempt) if idempotent or not connected else None
        limited = status == 429 or (status == 403 and after is not None)
        if limited or (status >= 500 and (idempotent or status in _NOT_PROCESSED)):
            wait = after if after is not None else self.backoff(attempt)
            return wait if wait <= self.max_wait_s else None
        return None


# GitHub's REST API asks for about a second between writes; four tries cover a short outage.
GITHUB_RETRY = RetryPolicy()
# What actions/upload-artifact@v4 does against the results service: 3 s, ×1.5, five tries.
ARTIFACT_RETRY = RetryPolicy(attempts=5, first_delay_s=3.0, multiplier=1.5)


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """The ``Retry-After`` header in seconds (case-insensitive), if it is a plain number."""
    for key, value in (headers or {}).items():
        if key.lower() == "retry-after":
            text = str(value).strip()
            return float(text) if text.isdigit() else None
    return None


@dataclass
class Attempts:
    """What the last try of :func:`send` saw, for the caller's error message."""

    count: int = 0
    last: str = ""


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    policy: RetryPolicy = GITHUB_RETRY,
    idempotent: bool | None = None,
    attempts: Attempts | None = None,
    **kwargs: Any,
) -> requests.Response | None:
    """Send a request under ``policy`` and return the final response.

    Returns None when every try failed on the network (``attempts.last`` names the error):
    the caller words the failure, since only it knows what it was doing. Any HTTP answer,
    good or bad, comes back for the caller to read.
    """
    import requests

    idempotent = method.upper() in IDEMPOTENT_METHODS if idempotent is None else idempotent
    kwargs.setdefault("timeout", policy.timeout_s)
    seen = attempts if attempts is not None else Attempts()
    attempt = 0
    while True:
        seen.count = attempt + 1
        try:
            response = session.request(method, url, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as error:
            seen.last = type(error).__name__
            connected = not isinstance(error, requests.ConnectTimeout) and not _refused(error)
            wait = policy.wait_before_retry(attempt, None, None, idempotent=idempotent, connected=connected)
            if wait is None:
                return None
        else:
            seen.last = f"HTTP {response.status_code}"
            wait = policy.wait_before_retry(attempt, response.status_code, response.headers, idempotent=idempotent)
            if response.status_code < 400 or wait is None:
                return response
        policy.sleep(wait)
        attempt += 1


def _refused(error: Exception) -> bool:
    """True when the connection was never established (nothing was sent)."""
    text = repr(error)
    return "NewConnectionError" in text or "Connection refused" in text or "NameResolutionError" in text

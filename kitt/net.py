"""The network policy for every request kitt makes to the engine under test.

One :class:`NetPolicy` (built once by the shells, ``kitt/cli.py`` and ``kitt/action.py``, from the
flags and the environment they read) is used by readiness, the load generator and the ``/metrics``
scrape, so the three never disagree about where a request goes or what it carries:

- **Auth and headers.** The API key (the value of the variable ``api_key_env`` names,
  ``OPENAI_API_KEY`` by default) goes out as ``Authorization: Bearer``; ``--header`` adds
  gateway headers. Credentials in the URL (``http://user:pw@host``) become basic auth and are
  stripped from the URL. Precedence: an explicit ``--header Authorization`` wins, then URL
  credentials, then the key. The key is a :class:`Secret`: it never prints, and
  :meth:`NetPolicy.describe` (what config.json records) names the variable, not the value.
- **Proxies** as curl and requests read them: ``http_proxy`` for ``http://`` (the request goes to
  the proxy with an absolute URI), ``https_proxy`` for ``https://`` (a ``CONNECT`` tunnel), then
  ``all_proxy``; lower case first, then upper case; ``no_proxy`` a comma list of host names
  (matching the host and its sub-domains, a leading dot or ``*.`` optional), IP addresses or
  CIDR blocks, each with an optional ``:port``, or ``*`` for everything.
- **Timeouts:** ``connect_timeout`` for each address tried (every resolved address, IPv6 and
  IPv4, in the resolver's order), ``request_timeout`` for one whole response (None: derived from
  the output length, :func:`request_timeout_for`).
- **Redirects are refused** (a benchmark must measure the server it names), with a message saying
  where the redirect pointed.

The GitHub side (``kitt/github/http.py``) has its own retry policy: that traffic is kitt's own
bookkeeping, not the system under test, and it never goes near the load generator's clock.
"""

from __future__ import annotations

import base64
import http.client
import ipaddress
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Mapping
from urllib.parse import unquote, urlsplit, urlunsplit

from kitt.errors import UsageError
from kitt.redact import REDACTED, redact_url, url_secrets

DEFAULT_KEY_ENV = "OPENAI_API_KEY"
CONNECT_TIMEOUT = 10.0


class Secret(str):
    """A string that never shows itself in ``repr`` or ``str`` formatting of containers."""

    def __repr__(self) -> str:
        return "Secret(<redacted>)"


@dataclass(frozen=True)
class Proxy:
    """An HTTP proxy: where to connect, and the Proxy-Authorization it needs (if any)."""

    host: str
    port: int
    authorization: str | None = field(default=None, repr=False)
    url: str = ""  # redacted, for messages and config.json


@dataclass(frozen=True)
class NetPolicy:
    """How kitt talks to the engine: headers, key, proxies, timeouts. Build with :meth:`from_environ`."""

    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    api_key: Secret | None = field(default=None, repr=False)
    api_key_env: str = DEFAULT_KEY_ENV
    proxies: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # (scheme, proxy URL) for http, https, all
    no_proxy: str = ""
    connect_timeout: float = CONNECT_TIMEOUT
    request_timeout: float | None = None

    @classmethod
    def from_environ(
        cls,
        environ: Mapping[str, str],
        *,
        api_key_env: str | None = None,
        headers: list[str] | tuple[str, ...] = (),
        request_timeout: float | None = None,
    ) -> NetPolicy:
        """The policy the flags and ``environ`` give; a bad ``--header`` or proxy variable is a UsageError."""
        name = api_key_env or DEFAULT_KEY_ENV
        if not name.replace("_", "a").isalnum():
            raise UsageError(f"--api-key-env must name an environment variable, got {name[:40]!r}")
        key = environ.get(name) or None
        try:
            parsed = tuple(parse_header(h) for h in headers)
        except ValueError as exc:
            raise UsageError(str(exc), hint="Write it as --header 'X-Gateway-Key: value'.") from None
        proxies = []
        for scheme in ("http", "https", "all"):
            variable = f"{scheme}_proxy" if environ.get(f"{scheme}_proxy") else f"{scheme.upper()}_PROXY"
            value = environ.get(variable)
            if value:
                try:
                    parse_proxy(value)
                except ValueError as exc:
                    raise UsageError(f"{variable}: {exc}", hint="Set it to http://host:port, or unset it.") from None
                proxies.append((scheme, value))
        no_proxy = environ.get("no_proxy") or environ.get("NO_PROXY") or ""
        return cls(
            parsed, Secret(key) if key else None, name, tuple(proxies), no_proxy, request_timeout=request_timeout
        )

    # -- what a request carries ----------------------------------------------------------------

    def headers_for(self, url: str) -> dict[str, str]:
        """The headers a request to ``url`` carries (auth included)."""
        out: dict[str, str] = {}
        parts = urlsplit(url)
        if self.api_key:
            out["Authorization"] = f"Bearer {self.api_key}"
        if parts.username is not None:
            basic = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            out["Authorization"] = "Basic " + base64.b64encode(basic).decode()
        for name, value in self.headers:
            out = {k: v for k, v in out.items() if k.lower() != name.lower()}
            out[name] = value
        return out

    def proxy_for(self, url: str) -> Proxy | None:
        """The proxy a request to ``url`` goes through, or None (direct)."""
        parts = urlsplit(url)
        table = dict(self.proxies)
        value = table.get(parts.scheme) or table.get("all")
        if not value or bypass(
            parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80), self.no_proxy
        ):
            return None
        return parse_proxy(value)

    def timeout_for(self, max_output_tokens: int) -> float:
        return self.request_timeout if self.request_timeout is not None else request_timeout_for(max_output_tokens)

    def describe(self, url: str) -> dict[str, object]:
        """What config.json records: names and redacted values, never a credential."""
        proxy = self.proxy_for(url)
        return {
            "api_key_env": self.api_key_env,
            "api_key_set": self.api_key is not None,
            "headers": {name: REDACTED for name, _ in self.headers},
            "url_credentials": urlsplit(url).username is not None,
            "proxy": proxy.url if proxy else None,
            "connect_timeout_s": self.connect_timeout,
            "request_timeout_s": self.request_timeout,
        }

    def secrets(self) -> list[str]:
        """Every credential value, for scrubbing messages."""
        values = [v for _, v in self.headers if len(v) >= 4]
        if self.api_key:
            values.append(str(self.api_key))
        for _, proxy in self.proxies:  # a proxy's password, from http(s)_proxy
            values.extend(url_secrets(proxy if "://" in proxy else f"http://{proxy}"))
        return values


def request_timeout_for(max_output_tokens: int) -> float:
    """The default per-request timeout: 60 s plus 0.5 s per output token (a 2 tokens/s floor)."""
    return 60.0 + 0.5 * max(max_output_tokens, 1)


def parse_header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not sep or not name or any(c in name for c in " \t\r\n") or "\r" in value or "\n" in value:
        raise ValueError(f"--header must look like 'Name: value', got {text.partition(':')[0][:40]!r}...")
    if name.lower() in ("host", "content-length", "transfer-encoding", "connection"):
        raise ValueError(f"--header cannot set {name}: kitt frames its requests itself")
    return name, value


def parse_proxy(value: str) -> Proxy:
    """``http://[user:pw@]host[:port]`` (a bare ``host:port`` means http); other schemes raise ValueError."""
    parts = urlsplit(value if "://" in value else f"http://{value}")
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"only http:// proxies are supported, got {redact_url(value)!r}")
    authorization = None
    if parts.username is not None:
        basic = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        authorization = "Basic " + base64.b64encode(basic).decode()
    return Proxy(parts.hostname, parts.port or 80, authorization, redact_url(value))


def bypass(host: str, port: int, no_proxy: str) -> bool:
    """Whether ``no_proxy`` sends ``host:port`` direct, as curl and requests read it."""
    host = host.lower().strip("[]")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        if not entry:
            continue
        if entry == "*":
            return True
        name, entry_port = entry, None
        if entry.startswith("[") and "]" in entry:  # [::1]:8000
            name, _, rest = entry[1:].partition("]")
            entry_port = rest[1:] if rest.startswith(":") else None
        elif entry.count(":") == 1:
            name, entry_port = entry.split(":")
        if entry_port and entry_port != str(port):
            continue
        if address is not None:
            try:
                if address in ipaddress.ip_network(name, strict=False):
                    return True
            except ValueError:
                pass
            continue
        name = name.removeprefix("*").lstrip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


def strip_credentials(url: str) -> str:
    """``url`` without ``user:pw@`` (they travel as a header instead)."""
    parts = urlsplit(url)
    if parts.username is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def scrub(text: str, policy: NetPolicy | None) -> str:
    """``text`` with every credential of ``policy`` replaced (for error messages)."""
    for secret in policy.secrets() if policy else []:
        text = text.replace(secret, REDACTED)
    return text


# ---------------------------------------------------------------------- small requests (urllib)


class Redirected(Exception):
    """The server answered a redirect, which kitt refuses to follow."""

    def __init__(self, status: int, location: str) -> None:
        super().__init__(f"HTTP {status} redirect to {redact_url(location)!r} refused; point kitt at the final URL")
        self.status, self.location = status, location


def open_url(
    policy: NetPolicy | None,
    method: str,
    url: str,
    data: bytes | None = None,
    timeout: float = 10.0,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, bytes]:
    """One small request (readiness, ``/metrics``) under ``policy``: (status, body).

    HTTP error statuses come back as a status; a redirect raises :class:`Redirected`; network
    failures raise OSError (urllib's URLError included).
    """
    policy = policy or NetPolicy()
    proxy = policy.proxy_for(url)
    handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
    if proxy is not None:
        # urllib sends http:// through the proxy with an absolute URI and tunnels https:// with CONNECT.
        handlers.append(urllib.request.ProxyHandler({urlsplit(url).scheme: f"http://{_host_port(proxy)}"}))
    else:
        handlers.append(urllib.request.ProxyHandler({}))  # never urllib's own reading of the environment
    opener = urllib.request.build_opener(*handlers)
    all_headers = {"Content-Type": "application/json", **(headers or {}), **policy.headers_for(url)}
    if proxy is not None and proxy.authorization:
        all_headers["Proxy-Authorization"] = proxy.authorization
    request = urllib.request.Request(strip_credentials(url), data=data, method=method, headers=all_headers)
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        if 300 <= exc.code < 400:
            raise Redirected(exc.code, exc.headers.get("Location", "")) from None
        return exc.code, exc.read()
    except http.client.HTTPException as exc:
        # An answer cut off (IncompleteRead: the server died mid-reply) or garbled is a network
        # failure like any other, not a crash.
        raise ConnectionError(f"the answer was cut off or malformed ({type(exc).__name__})") from None


def _host_port(proxy: Proxy) -> str:
    host = f"[{proxy.host}]" if ":" in proxy.host else proxy.host
    return f"{host}:{proxy.port}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:  # type: ignore[override]
        return None  # urllib then raises HTTPError with the 3xx status

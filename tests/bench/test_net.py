"""The network policy against real peers: a bearer-key server, tinyproxy, TLS with its own CA, [::1],
a stream that never answers, an endless SSE line, a redirect, and URL credentials.

The sim server (kitt.engines.simserver) plays the engine; tinyproxy is Debian's real proxy, started
per test on loopback, and its log says whether a request went through it.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path

import pytest
from net_peers import Recorder, TinyProxy, TlsRelay, make_ca_and_cert, sim, tinyproxy_binary
from support import clean_environ, run_kitt

from kitt import telemetry
from kitt.arm import ready_timeout
from kitt.bench.client import Client
from kitt.bench.loadgen import Target, run_level
from kitt.net import NetPolicy, Redirected, bypass, open_url
from kitt.bench.pump import Pump
from kitt.bench.records import RequestRecord
from kitt.workload.spec import RequestSpec
from kitt.config import Level

KEY = "sk-test-9f8e7d6c5b4a"
RUN = (
    "--num-requests",
    "4",
    "--concurrency",
    "2",
    "--repeats",
    "1",
    "--warmup",
    "0",
    "--output-len",
    "8",
    "--input-len",
    "8",
)

needs_tinyproxy = pytest.mark.skipif(
    tinyproxy_binary() is None, reason="tinyproxy is not installed (.ci/run installs it: apt-get install tinyproxy)"
)


def _env(**extra: str) -> dict[str, str]:
    env = clean_environ(**extra)
    for name in (
        "OPENAI_API_KEY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "no_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
    ):
        if name not in extra:
            env.pop(name, None)
    return env


def _level(target: Target, count: int = 2, tokens: int = 8) -> list[RequestRecord]:
    specs = [RequestSpec(index=i, prompt="hello there", max_tokens=tokens) for i in range(count)]
    sink: list[RequestRecord] = []
    asyncio.run(
        asyncio.wait_for(run_level(target, specs, Level("concurrency", 2), test_name="t", run_number=1, sink=sink), 60)
    )
    return sink


def _all_output(result, folder: Path) -> str:
    return (
        result.stdout + result.stderr + "".join(p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file())
    )


# ------------------------------------------------------------------------------ auth


def test_the_key_reaches_readiness_benchmark_and_scrape_and_is_never_written(tmp_path: Path) -> None:
    with sim("--api-key", KEY) as url:
        out = tmp_path / "out"
        result = run_kitt(
            "run",
            "-m",
            "sim-net",
            "-e",
            "openai",
            "--endpoint",
            url,
            "-o",
            str(out),
            *RUN,
            "--header",
            "X-Gateway: gw-secret-value",
            env=_env(OPENAI_API_KEY=KEY),
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        text = _all_output(result, out)
        assert KEY not in text and "gw-secret-value" not in text
        config = json.loads((out / "config.json").read_text())
        assert config["network"]["api_key_env"] == "OPENAI_API_KEY" and config["network"]["api_key_set"] is True
        assert config["network"]["headers"] == {"X-Gateway": "<redacted>"}
        samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
        assert samples and all(not s.get("error") for s in samples)
        # The /metrics scrape carries the key too (the sim guards it): with it, counters; without, none.
        policy = NetPolicy(api_key=NetPolicy.from_environ({"K": KEY}, api_key_env="K").api_key)
        assert telemetry.scrape(url + "/metrics", net=policy) is not None
        assert telemetry.scrape(url + "/metrics") is None


@pytest.mark.parametrize("variable", [None, "MY_GATEWAY_KEY"])
def test_a_missing_or_wrong_key_fails_fast_naming_the_variable(tmp_path: Path, variable: str | None) -> None:
    extra = {variable: "wrong-key"} if variable else {}
    args = ("--api-key-env", variable) if variable else ()
    with sim("--api-key", KEY) as url:
        # A ready timeout far beyond the child's 60 s: waiting it out would never return in time.
        result = run_kitt(
            "run",
            "-m",
            "sim-net",
            "-e",
            "openai",
            "--endpoint",
            url,
            "-o",
            str(tmp_path / "o"),
            *RUN,
            *args,
            "--ready-timeout",
            "3600",
            env=_env(**extra),
            timeout=60,
        )
    assert result.returncode == 1
    assert "401" in result.stderr and f"${variable or 'OPENAI_API_KEY'}" in result.stderr
    assert "wrong-key" not in result.stdout + result.stderr


def test_a_bad_header_is_a_usage_error(tmp_path: Path) -> None:
    result = run_kitt(
        "run",
        "-m",
        "x",
        "-e",
        "openai",
        "--endpoint",
        "http://127.0.0.1:9",
        "-o",
        str(tmp_path),
        "--header",
        "no colon here",
        env=_env(),
    )
    assert result.returncode == 2 and "--header" in result.stderr


def test_url_credentials_go_as_basic_auth_and_redirects_are_refused() -> None:
    recorder = Recorder()
    try:
        base = recorder.url.replace("http://", "http://user:p%40ss@")
        status, _ = open_url(None, "GET", base + "/health")
        records = _level(Target(base_url=base, model="m"), count=1)
        assert status == 200
        assert [h.get("Authorization") for _, _, h in recorder.seen] == ["Basic dXNlcjpwQHNz"] * 2
        assert records[0].error  # the recorder is not a streaming server; the header is what counts here
    finally:
        recorder.shutdown()
    redirect = Recorder(status=307, location="http://127.0.0.1:9/elsewhere")
    try:
        with pytest.raises(Redirected, match="redirect to 'http://127.0.0.1:9/elsewhere' refused"):
            open_url(None, "GET", redirect.url + "/health")
        record = _level(Target(base_url=redirect.url, model="m"), count=1)[0]
        assert record.error and "redirect to 'http://127.0.0.1:9/elsewhere' refused" in record.error
        assert len(redirect.seen) == 2  # nothing followed the redirect
    finally:
        redirect.shutdown()


# ------------------------------------------------------------------------------ proxies


def test_no_proxy_reads_like_curl_and_requests() -> None:
    assert bypass("api.example.com", 443, "example.com")
    assert bypass("api.example.com", 443, ".example.com")
    assert bypass("example.com", 80, "*.example.com")
    assert not bypass("badexample.com", 80, "example.com")
    assert bypass("10.1.2.3", 80, "10.0.0.0/8") and not bypass("11.1.2.3", 80, "10.0.0.0/8")
    assert bypass("::1", 8000, "[::1]:8000") and not bypass("::1", 8001, "[::1]:8000")
    assert bypass("127.0.0.1", 8000, "localhost, 127.0.0.1") and bypass("anything", 1, "*")
    assert not bypass("host", 80, "")


@needs_tinyproxy
@pytest.mark.parametrize("bypassed", [False, True])
def test_http_through_tinyproxy_unless_no_proxy(tmp_path: Path, bypassed: bool) -> None:
    proxy = TinyProxy(tmp_path / "proxy")
    try:
        with sim() as url:
            port = url.rpartition(":")[2]
            environ = {"http_proxy": proxy.url, **({"no_proxy": "localhost,127.0.0.1"} if bypassed else {})}
            policy = NetPolicy.from_environ(environ)
            records = _level(Target(base_url=url, model="sim-net", net=policy))
            assert telemetry.scrape(url + "/metrics", net=policy) is not None
        assert all(r.error is None and r.events for r in records), [r.error for r in records]
        seen = f"127.0.0.1:{port}" in proxy.log()
        assert seen is not bypassed, proxy.log()[-2000:]
    finally:
        proxy.stop()


@needs_tinyproxy
def test_https_through_a_connect_tunnel_with_a_ca_from_ssl_cert_file(tmp_path: Path) -> None:
    ca, cert, key = make_ca_and_cert(tmp_path)
    proxy = TinyProxy(tmp_path / "proxy")
    with sim() as url:
        relay = TlsRelay(url, cert, key)
        try:
            out = tmp_path / "out"
            result = run_kitt(
                "run",
                "-m",
                "sim-net",
                "-e",
                "openai",
                "--endpoint",
                relay.url,
                "-o",
                str(out),
                *RUN,
                env=_env(SSL_CERT_FILE=str(ca), https_proxy=proxy.url),
                timeout=120,
            )
            assert result.returncode == 0, result.stderr
            config = json.loads((out / "config.json").read_text())
            assert config["network"]["proxy"] == proxy.url
            assert "go through the proxy" in (out / "metrics.json").read_text()
            assert f"127.0.0.1:{relay.port}" in proxy.log()  # the CONNECT tunnel
            # Without the CA the handshake fails: TLS is really verified end to end.
            bare = run_kitt(
                "run",
                "-m",
                "sim-net",
                "-e",
                "openai",
                "--endpoint",
                relay.url,
                "-o",
                str(tmp_path / "o2"),
                *RUN,
                "--ready-timeout",
                "2",
                env=_env(),
                timeout=60,
            )
            assert bare.returncode == 1 and "CERTIFICATE_VERIFY_FAILED" in bare.stderr
        finally:
            relay.stop()
            proxy.stop()


# ------------------------------------------------------------------------------ addresses


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="this machine has no IPv6 loopback (::1)")
def test_an_ipv6_endpoint(tmp_path: Path) -> None:
    with sim(host="::1") as url:
        assert url.startswith("http://[::1]:")
        result = run_kitt(
            "run",
            "-m",
            "sim-net",
            "-e",
            "openai",
            "--endpoint",
            url,
            "-o",
            str(tmp_path / "o"),
            *RUN,
            env=_env(),
            timeout=120,
        )
    assert result.returncode == 0, result.stderr


def test_every_resolved_address_is_tried_in_order() -> None:
    with sim() as url:
        port = int(url.rpartition(":")[2])
        dead = socket.socket()
        dead.bind(("127.0.0.1", 0))  # bound, never listening: connecting to it is refused
        client = Client(url + "/v1/completions", connect_timeout=5)
        client._addresses = [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", dead.getsockname()[1])),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
        ]
        pump, outcome = Pump(), []

        def opened(connection, error):  # type: ignore[no-untyped-def]
            outcome.append((connection.ready, error))
            pump.stop()

        pump.call_at(time.perf_counter() + 10, pump.stop)
        client.open(pump, opened)
        pump.run()
        dead.close()
    assert outcome == [(True, None)]


# ------------------------------------------------------------------------------ timeouts and caps


def test_a_stream_that_never_answers_times_out() -> None:
    with sim("--stall") as url:
        records = _level(Target(base_url=url, model="sim-net", request_timeout=0.5))
    assert [r.error for r in records] == ["TimeoutError: no complete response within 0.5 s"] * 2


def test_the_request_timeout_flag(tmp_path: Path) -> None:
    with sim("--stall") as url:
        result = run_kitt(
            "run",
            "-m",
            "sim-net",
            "-e",
            "openai",
            "--endpoint",
            url,
            "-o",
            str(tmp_path / "o"),
            *RUN,
            "--request-timeout",
            "1",
            env=_env(),
            timeout=120,
        )
    assert result.returncode == 1
    samples = [json.loads(line) for line in (tmp_path / "o" / "samples.jsonl").read_text().splitlines()]
    assert samples and all("no complete response within 1 s" in s["error"] for s in samples)


def test_an_endless_sse_line_is_cut_at_the_cap() -> None:
    with sim("--endless-line", "64") as url:
        records = _level(Target(base_url=url, model="sim-net"), count=1)
    assert records[0].error and "SSE line longer than 4 MiB" in records[0].error


def test_the_ready_timeout_is_not_capped_for_endpoints(tmp_path: Path) -> None:
    assert ready_timeout(None, "endpoint") == 30.0 and ready_timeout(None, "docker") == 900.0
    assert ready_timeout(120.0, "endpoint") == 120.0  # a user's value is never capped
    with sim() as url:
        result = run_kitt(
            "run",
            "-m",
            "not-served-here",
            "-e",
            "openai",
            "--endpoint",
            url,
            "-o",
            str(tmp_path / "o"),
            *RUN,
            "--ready-timeout",
            "3",
            env=_env(),
            timeout=60,
        )
    assert result.returncode == 1 and "within 3 s" in result.stderr  # the user's 3 s, not the endpoint default
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    refused = run_kitt(
        "run",
        "-m",
        "sim-net",
        "-e",
        "openai",
        "--endpoint",
        f"http://127.0.0.1:{port}",
        "-o",
        str(tmp_path / "o2"),
        *RUN,
        "--ready-timeout",
        "1",
        env=_env(),
        timeout=60,
    )
    assert refused.returncode == 1 and "check --endpoint" in refused.stderr


def test_the_action_input_names_the_variable_and_the_key_never_prints() -> None:
    from kitt.action_inputs import ActionInputs

    inputs = ActionInputs.from_environment(
        {
            "INPUT_MODEL": "m",
            "INPUT_ENGINE": "openai",
            "INPUT_API_KEY_ENV": "GATEWAY_KEY",
            "GATEWAY_KEY": KEY,
            "HTTPS_PROXY": "http://u:proxy-pw@127.0.0.1:3128",
        }
    )
    assert inputs.net.api_key_env == "GATEWAY_KEY" and inputs.net.api_key == KEY
    assert inputs.net.headers_for("https://x/")["Authorization"] == f"Bearer {KEY}"
    assert inputs.net.proxy_for("https://x/").url == "http://<redacted>@127.0.0.1:3128"
    assert KEY not in repr(inputs) and "proxy-pw" not in repr(inputs)
    assert KEY in inputs.net.secrets()  # masked in the runner's log by kitt.action.main
    default = ActionInputs.from_environment({"INPUT_MODEL": "m", "OPENAI_API_KEY": KEY})
    assert default.net.api_key_env == "OPENAI_API_KEY" and default.net.api_key == KEY


def test_a_proxy_kitt_cannot_use_is_a_usage_error(tmp_path: Path) -> None:
    result = run_kitt(
        "run",
        "-m",
        "x",
        "-e",
        "openai",
        "--endpoint",
        "http://127.0.0.1:9",
        "-o",
        str(tmp_path),
        env=_env(HTTPS_PROXY="socks5://127.0.0.1:1080"),
    )
    assert result.returncode == 2 and "HTTPS_PROXY: only http:// proxies are supported" in result.stderr


def test_an_answer_cut_off_mid_body_is_a_network_failure_not_a_crash():
    """The server promises 1,317 bytes and dies after none (an engine killed while kitt measured
    prompt lengths, stop 35's CI rehearsal): open_url raises OSError, as its callers expect."""
    import socket
    import threading

    from kitt.net import open_url

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def serve() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1317\r\n\r\n")
        conn.close()

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with pytest.raises(OSError, match="cut off or malformed"):
            open_url(None, "POST", f"http://127.0.0.1:{listener.getsockname()[1]}/tokenize", b"{}", 5.0)
    finally:
        thread.join(5)
        listener.close()

"""Multi-turn sessions in the load generator (issue 25, item 2): each later turn carries the
earlier user messages and the answers the server really returned, leaves its think time after the
answer's end, a failed turn ends its session (the rest counted as not sent), and a session whose
next turn would pass the context ends early. Against a small real HTTP server that records bodies."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest

from kitt.bench.loadgen import Target, run_level
from kitt.bench.metrics import compute_metrics
from kitt.bench.pump import Pump
from kitt.bench.records import RequestRecord
from kitt.config import Level
from kitt.workload.spec import RequestSpec, Session, next_turn, request_body


class Recorder(BaseHTTPRequestHandler):
    """Answers every chat request with a text that names the request (``answer-N``, in three
    events) and usage counts: prompt tokens as the number of words sent, 3 completion tokens.
    A user message holding ``FAIL`` gets HTTP 500."""

    protocol_version = "HTTP/1.1"
    bodies: list[dict[str, Any]] = []
    lock = threading.Lock()
    close_each = False  # close the connection after every answer

    def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.lock:
            self.bodies.append(body)
            number = len(self.bodies)
        if "FAIL" in body["messages"][-1]["content"]:
            self.send_response(500)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")
            return
        words = sum(len(m["content"].split()) for m in body["messages"])
        events = [{"choices": [{"delta": {"content": part}}]} for part in (f"answer-{number}", " of", " three")]
        events.append({"choices": [], "usage": {"prompt_tokens": words, "completion_tokens": 3}})
        data = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(data)))
        if self.close_each:
            self.send_header("Connection", "close")  # no kept-alive connection for the next turn
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def server() -> Iterator[str]:
    Recorder.bodies, Recorder.close_each = [], False
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def sessions(turns: list[list[str]], think_s: float = 0.0) -> list[Session]:
    out, index = [], 0
    for number, texts in enumerate(turns):
        specs = []
        for text in texts:
            specs.append(RequestSpec(index=index, prompt=text, max_tokens=3, input_len=len(text.split())))
            index += 1
        out.append(Session(index=number, turns=tuple(specs), think_s=(think_s,) * (len(specs) - 1)))
    return out


def run(
    url: str, convs: list[Session], level: Level, schedule: list[float] | None = None, max_model_len: int | None = None
) -> list[RequestRecord]:
    sink: list[RequestRecord] = []
    asyncio.run(
        run_level(
            Target(base_url=url, model="m", api="chat"),
            [s.turns[0] for s in convs],
            level,
            test_name="t",
            run_number=1,
            sink=sink,
            schedule=schedule,
            sessions=convs,
            max_model_len=max_model_len,
        )
    )
    return sink


def test_each_turn_carries_the_earlier_messages_and_the_answers_the_server_returned(server: str) -> None:
    convs = sessions([["hello one", "next two", "last three"], ["hi alpha", "then beta", "end gamma"]], think_s=0.05)
    records = run(server, convs, Level("concurrency", 2))
    assert len(records) == 6 and all(r.ok for r in records)
    assert sorted((r.session, r.turn) for r in records) == [(s, t) for s in (0, 1) for t in (1, 2, 3)]
    by_user = {b["messages"][-1]["content"]: b for b in Recorder.bodies}
    served = {b["messages"][-1]["content"]: f"answer-{i} of three" for i, b in enumerate(Recorder.bodies, 1)}
    for conv in convs:
        texts = [t.prompt for t in conv.turns]
        for k in range(1, 3):
            expected = []
            for earlier in texts[:k]:
                expected += [{"role": "user", "content": earlier}, {"role": "assistant", "content": served[earlier]}]
            assert by_user[texts[k]]["messages"] == expected + [{"role": "user", "content": texts[k]}]
    # Think time: each later turn was due 50 ms after its previous answer's end, and left no earlier.
    ends = {(r.session, r.turn): r.end for r in records}
    for r in records:
        if r.turn and r.turn > 1:
            assert r.scheduled == pytest.approx(ends[(r.session, r.turn - 1)] + 0.05, abs=1e-9)
            assert r.sent >= r.scheduled
    metrics = compute_metrics(records, 1.0)
    assert metrics["median_ttft_ms_turn1"] is not None and metrics["median_ttft_ms_later"] is not None
    assert metrics["turns_not_sent"] == 0 and metrics["sessions_cut_by_length"] == 0
    assert {"session", "turn"} <= set(records[0].to_sample(0.0))


@pytest.mark.parametrize("think_s", [0.0, 0.05])
def test_a_next_turn_opens_its_own_connection_when_the_server_closed_the_last(server: str, think_s: float) -> None:
    """No kept-alive connection is left when a turn is made ready: it opens one then, and is sent
    no earlier than it is due (at once without a think time, once the connection is up)."""
    Recorder.close_each = True
    convs = sessions([["hello one", "next two", "last three"], ["hi alpha", "then beta", "end gamma"]], think_s)
    records = run(server, convs, Level("concurrency", 2))
    assert len(records) == 6 and all(r.ok for r in records), [r.error for r in records]
    ends = {(r.session, r.turn): r.end for r in records}
    for r in records:
        if r.turn and r.turn > 1:
            assert r.scheduled == pytest.approx(ends[(r.session, r.turn - 1)] + think_s, abs=1e-9)
            assert r.sent >= r.scheduled
    assert [b["messages"][-1]["content"] for b in Recorder.bodies if len(b["messages"]) == 5] != []


def test_one_stream_runs_one_session_at_a_time(server: str) -> None:
    records = run(server, sessions([["a b", "c d"], ["e f", "g h"]]), Level("concurrency", 1))
    first = [r for r in records if r.session == 0]
    second = [r for r in records if r.session == 1]
    assert max(r.end or 0 for r in first) <= min(r.sent for r in second)


def test_an_open_loop_rate_counts_session_starts(server: str) -> None:
    records = run(
        server,
        sessions([["a b", "c d"], ["e f", "g h"], ["i j", "k l"]]),
        Level("rate", 10.0),
        schedule=[0.0, 0.01, 0.02],
    )
    assert len(records) == 6 and all(r.ok for r in records)
    assert sorted(r.scheduled for r in records if r.turn == 1) == pytest.approx(
        [min(r.scheduled for r in records) + d for d in (0.0, 0.01, 0.02)], abs=1e-9
    )


def test_a_failed_turn_ends_its_session_and_the_rest_are_not_sent(server: str) -> None:
    records = run(
        server, sessions([["a b", "FAIL here", "never sent", "nor this"], ["c d", "e f"]]), Level("concurrency", 2)
    )
    assert len(records) == 4
    failed = next(r for r in records if not r.ok)
    assert (failed.session, failed.turn, failed.session_end, failed.turns_not_sent) == (0, 2, "failed", 2)
    metrics = compute_metrics(records, 1.0)
    assert metrics["failed"] == 1 and metrics["turns_not_sent"] == 2
    assert not any("never sent" in b["messages"][-1]["content"] for b in Recorder.bodies)


def test_a_session_that_would_pass_the_context_ends_early(server: str) -> None:
    # Turn 1's prompt is 2 words, its answer 3 tokens; turn 2 adds 2 and asks for 3: 10 > 9.
    records = run(server, sessions([["a b", "c d", "e f"]]), Level("concurrency", 1), max_model_len=9)
    assert len(records) == 1 and records[0].ok
    assert (records[0].session_end, records[0].turns_not_sent) == ("length", 2)
    assert compute_metrics(records, 1.0)["sessions_cut_by_length"] == 1


def test_a_time_boxed_level_sends_no_turn_after_its_end(server: str) -> None:
    records: list[RequestRecord] = []
    convs = sessions([["a b", "c d", "e f"]], think_s=0.3)
    asyncio.run(
        run_level(
            Target(base_url=server, model="m", api="chat"),
            [convs[0].turns[0]],
            Level("concurrency", 1),
            test_name="t",
            run_number=1,
            sink=records,
            sessions=convs,
            duration=0.2,
        )
    )
    assert len(records) == 1 and (records[0].session_end, records[0].turns_not_sent) == ("time", 2)


def test_the_next_turn_for_the_completions_api_continues_the_text() -> None:
    first = RequestSpec(index=0, prompt="tell me", max_tokens=4, prefix="SYSTEM")
    second = next_turn(first, " a story", RequestSpec(index=1, prompt="and another", max_tokens=4))
    third = next_turn(second, " once more", RequestSpec(index=2, prompt="thanks", max_tokens=4))
    body = request_body(third, api="completions", model="m", stream_options={}, extra={})
    assert body["prompt"] == "SYSTEM tell me a story\nand another once more\nthanks"
    earlier = request_body(second, api="completions", model="m", stream_options={}, extra={})["prompt"]
    assert body["prompt"].startswith(earlier + " once more")  # turn k+1's prompt opens with turn k's and its answer
    chat = request_body(third, api="chat", model="m", stream_options={}, extra={})["messages"]
    assert [m["role"] for m in chat] == ["user", "assistant", "user", "assistant", "user"]
    assert chat[0]["content"] == "SYSTEM tell me" and chat[1]["content"] == " a story"


def test_work_a_next_turn_waits_on_is_deferred_ahead_of_the_rest() -> None:
    """The pump runs deferred work in order, except work marked ``first`` (a session's answer,
    which its next turn is built from), which goes ahead of what was deferred before it."""
    pump, ran = Pump(), []
    for name in ("a", "b"):
        pump.defer(ran.append, name)
    pump.defer(ran.append, "turn", first=True)
    pump.defer(pump.stop)
    pump.run()
    assert ran == ["turn", "a", "b"]

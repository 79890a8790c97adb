"""Per-request records: what the load generator saw of each request, and nothing derived.

All times are ``time.perf_counter()`` seconds (monotonic). A *token event* is an SSE event that
carries generated text; role-only deltas, empty deltas, usage-only chunks and ``[DONE]`` are not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class RequestRecord:
    index: int
    test_name: str
    run_number: int  # 0 for warmup requests
    scheduled: float  # when the request was due (closed loop: when a stream became free)
    sent: float = 0.0  # just before the request was written; every latency is measured from here
    events: list[float] = field(default_factory=list)  # arrival time of each token event
    event_tokens: list[int] | None = None  # tokens carried by each event, when the server says
    end: float | None = None  # end of the stream ([DONE] or connection close)
    prompt_tokens: int | None = None
    cached_tokens: int | None = None  # usage.prompt_tokens_details.cached_tokens, when the server says
    completion_tokens: int | None = None
    usage_from_server: bool = False
    requested_output_tokens: int = 0
    status: int | None = None
    error: str | None = None
    retries: int = 0  # sent again on a fresh connection after a reused one closed unanswered
    retry_error: str | None = None  # how the first attempt ended, when there was a retry
    usage_rejected: str | None = None  # why the server's usage count was not believed (event count used)
    text_withheld: bool = False  # no event carried text, the usage confirmed tokens (kitt.bench.loadgen)
    session: int | None = None  # a multi-turn test: the session (conversation) this turn belongs to
    turn: int | None = None  # its turn, from 1
    session_end: str | None = None  # on a session's last record when it ended early: "failed", "length", "time"
    turns_not_sent: int = 0  # with session_end: the session's turns that were never sent
    answer: str | None = None  # a session's answer text, kept for its next turn (not written to samples)

    @property
    def warmup(self) -> bool:
        return self.run_number == 0

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.events)

    @property
    def output_tokens(self) -> int:
        """Server usage when given and believable, else one token per event (and the summary says so)."""
        if self.completion_tokens is not None and self.usage_rejected is None:
            return self.completion_tokens
        return len(self.events)

    def to_sample(self, origin: float) -> dict[str, Any]:
        """One samples.jsonl line: times in seconds from ``origin``, event offsets in ms from send."""
        sent = self.sent or self.scheduled
        return {
            "test_name": self.test_name,
            "run_number": self.run_number,
            "index": self.index,
            "warmup": self.warmup,
            "scheduled_s": round(self.scheduled - origin, 6),
            "sent_s": round(sent - origin, 6),
            "schedule_lag_ms": round((sent - self.scheduled) * 1e3, 3),
            "event_ms": [round((t - sent) * 1e3, 3) for t in self.events],
            "event_tokens": self.event_tokens,
            "end_ms": None if self.end is None else round((self.end - sent) * 1e3, 3),
            "prompt_tokens": self.prompt_tokens,
            "cached_tokens": self.cached_tokens,
            "completion_tokens": self.completion_tokens,
            "usage_from_server": self.usage_from_server,
            "requested_output_tokens": self.requested_output_tokens,
            "status": self.status,
            "error": self.error,
            "retries": self.retries,
            "retry_error": self.retry_error,
            "usage_rejected": self.usage_rejected,
            "text_withheld": self.text_withheld,
            "session": self.session,
            "turn": self.turn,
            "session_end": self.session_end,
            "turns_not_sent": self.turns_not_sent,
        }

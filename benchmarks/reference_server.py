"""The harness's reference server: kitt's sim server with an exact schedule and its truth log.

The sim engine (``kitt/engines/simserver.py``) is already built for timing fidelity: raw
non-blocking sockets stamped with the kernel's receive time, a timerfd at absolute
CLOCK_MONOTONIC deadlines, and a truth log of every request's arrival and every event's send
time. As a yardstick it runs with no noise: each request's event ``i`` is due at
``arrival + TTFT + i x ITL`` (50 ms and 10 ms by default), with ``--tokens-per-event`` tokens
each, or per request through the ``ref_ttft_ms``, ``ref_itl_ms`` and ``ref_tokens_per_event``
body fields. The first event's text is ``" r<rid>"``, so a client's saved output names the
server's request id.

    python benchmarks/reference_server.py --port 0 --ttft-ms 50 --itl-ms 10 --log truth.json

It prints ``listening <port> ...`` on stdout once it accepts connections, and writes the truth
log on SIGTERM or SIGINT.
"""

from kitt.engines.simserver import main

if __name__ == "__main__":
    main(model="reference", ttft_ms=50.0, itl_ms=10.0, ttft_cv=0.0, itl_cv=0.0)

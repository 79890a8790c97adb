"""Every error kitt raises on purpose, in one tree.

    KittError                  exit 1 unless a subclass says otherwise
    ├── UsageError             exit 2: a bad flag, input, suite file or engine name
    ├── BenchmarkError         the benchmark could not produce trustworthy numbers
    │   ├── EngineNotReady     the engine never became ready in time
    │   ├── EngineDied         the engine exited while it was being used
    │   └── Cancelled          SIGINT or SIGTERM (a cancelled CI job)
    ├── ResultsError           results are missing, unreadable or of an unknown schema
    └── GitHubError            the GitHub API refused or failed a request
        └── ArtifactError      an artifact could not be uploaded, found or unpacked

The CLI and the action catch ``KittError`` once, print ``str(error)`` as a single line
(under Actions also as an ``::error`` annotation) and exit with ``error.exit_code``.
A message says what went wrong; ``hint`` says what to do about it.
"""

from __future__ import annotations

import sys

from kitt.redact import neutralise, redact_urls


class KittError(Exception):
    exit_code = 1
    results_dir: object = None  # a failed run's results, when kept apart from the output folder asked for

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        text = self.message.rstrip()
        if self.hint:
            text = f"{text if text.endswith(('.', '?', '!')) else text + '.'} {self.hint}"
        # One line, always: multi-line details (engine logs) travel separately. A URL's password
        # never prints, wherever the message got the URL from.
        return redact_urls(" ".join(text.split()))


class UsageError(KittError):
    exit_code = 2


class BenchmarkError(KittError):
    pass


class EngineNotReady(BenchmarkError):
    def __init__(self, message: str, hint: str | None = None, log_tail: str = "") -> None:
        super().__init__(message, hint)
        self.log_tail = log_tail


class EngineDied(BenchmarkError):
    def __init__(self, message: str, hint: str | None = None, log_tail: str = "") -> None:
        super().__init__(message, hint)
        self.log_tail = log_tail


class Cancelled(BenchmarkError):
    pass


class ResultsError(KittError):
    pass


class GitHubError(KittError):
    pass


class ArtifactError(GitHubError):
    pass


def print_engine_log(error: KittError) -> None:
    """Print the engine log an error carries (to stderr), before its one-line message, so that
    a hint saying "the engine log above" is true in the CLI and the action alike."""
    log_tail = getattr(error, "log_tail", "")
    if log_tail:
        print("---- last lines of the engine log ----", file=sys.stderr)
        # The log is the engine's (it echoes user input: the model name): inert under Actions.
        print(neutralise(redact_urls(log_tail.rstrip())), file=sys.stderr)
        print("--------------------------------------", file=sys.stderr, flush=True)

"""GitHub Actions I/O: the run's context, step outputs, annotations, masks and the job summary.

Workflow commands go through actions-toolkit's ``core`` (never its ``github`` module, which edits
sys.path at import). GitHub shows at most 10 error and 10 warning annotations per step, so the
11th and later are folded into one closing annotation instead of being silently dropped; a job
summary is limited to 1 MiB per step, so an append that would pass it is cut with a note.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

MAX_ANNOTATIONS = 10
MAX_SUMMARY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ActionsContext:
    """What the runner tells a step about itself, read once from the environment."""

    in_actions: bool
    api_url: str
    server_url: str
    repository: str | None
    run_id: str | None
    event_path: Path | None
    output_path: Path | None
    summary_path: Path | None
    base_ref: str | None
    temp_dir: Path | None = None
    flavour: str = "cli"  # composite | docker | cli: set by each action file, read in one place
    event_name: str | None = None
    sha: str | None = None  # the commit the workflow run is for
    ref_name: str | None = None  # its branch or tag
    tool_cache: Path | None = None  # RUNNER_TOOL_CACHE: kept between jobs on a self-hosted runner

    @property
    def engine_cache(self) -> Path | None:
        """Where engines keep compiled graphs and kernels between jobs: under the runner's tool cache."""
        return self.tool_cache / "kitt" / "engine-cache" if self.tool_cache else None

    @property
    def run_url(self) -> str | None:
        if self.repository and self.run_id:
            return f"{self.server_url.rstrip('/')}/{self.repository}/actions/runs/{self.run_id}"
        return None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> "ActionsContext":
        env = os.environ if environ is None else environ

        def path(name: str) -> Path | None:
            return Path(env[name]) if env.get(name) else None

        return cls(
            in_actions=env.get("GITHUB_ACTIONS") == "true",
            api_url=env.get("GITHUB_API_URL") or "https://api.github.com",
            server_url=env.get("GITHUB_SERVER_URL") or "https://github.com",
            repository=env.get("GITHUB_REPOSITORY") or None,
            run_id=env.get("GITHUB_RUN_ID") or None,
            event_path=path("GITHUB_EVENT_PATH"),
            output_path=path("GITHUB_OUTPUT"),
            summary_path=path("GITHUB_STEP_SUMMARY"),
            base_ref=env.get("GITHUB_BASE_REF") or None,
            tool_cache=path("RUNNER_TOOL_CACHE"),
            # A Docker action gets the host's RUNNER_TEMP without the folder (actions/runner#1984).
            temp_dir=temp if (temp := path("RUNNER_TEMP")) and temp.is_dir() else None,
            flavour=env.get("KITT_ACTION_FLAVOUR") or "cli",
            event_name=env.get("GITHUB_EVENT_NAME") or None,
            sha=env.get("GITHUB_SHA") or None,
            ref_name=env.get("GITHUB_REF_NAME") or None,
        )

    def event(self) -> dict[str, Any]:
        """The triggering event's payload (empty outside Actions or when unreadable)."""
        if self.event_path is None:
            return {}
        from kitt.errors import KittError
        from kitt.safeload import load_json

        try:
            payload = load_json(self.event_path, "event payload", KittError)
        except KittError:
            return {}
        return payload if isinstance(payload, dict) else {}

    @property
    def workflow_conclusion(self) -> str | None:
        """The triggering workflow run's conclusion (a ``workflow_run`` event), None when there is
        none; untrusted, so a value that is not a string reads as ``"unknown"``, never a success."""
        value = self.event_object("workflow_run").get("conclusion")
        if value is None:
            return None
        return value[:40] if isinstance(value, str) else "unknown"

    def event_object(self, *keys: str) -> dict[str, Any]:
        """``event()[k1][k2]...`` when every step is a JSON object, else {}: a payload field of
        the wrong type (``"pull_request": "x"``) reads as absent rather than crashing."""
        value: Any = self.event()
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return value if isinstance(value, dict) else {}


class Annotations:
    """Error, warning and notice annotations, capped per step as GitHub displays them."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._counts = {"error": 0, "warning": 0}
        self._overflow: dict[str, list[str]] = {"error": [], "warning": []}

    def _emit(self, kind: str, message: str, title: str | None = None) -> None:
        import sys

        if not self.enabled:
            from kitt.redact import safe_line

            print(safe_line(f"{kind}: {message}"), file=sys.stderr)
            return
        from actions_toolkit.command import issue_command

        # core.error(title=...) would also send empty file=, line=... properties.
        issue_command(kind, {"title": title} if title else {}, message)

    def error(self, message: str, title: str | None = None) -> None:
        self._capped("error", message, title)

    def warning(self, message: str, title: str | None = None) -> None:
        self._capped("warning", message, title)

    def notice(self, message: str, title: str | None = None) -> None:
        self._emit("notice", message, title)

    def tell(self, notices: Iterable[Any]) -> None:
        """Each of ``notices`` at its level: anything with a ``level`` (error, warning or notice)
        and a ``message``, as ``kitt.ci.Notice``."""
        for notice in notices:
            getattr(self, notice.level)(notice.message)

    def _capped(self, kind: str, message: str, title: str | None) -> None:
        # Keep one slot for the summary of what did not fit.
        if self.enabled and self._counts[kind] >= MAX_ANNOTATIONS - 1:
            self._overflow[kind].append(message)
            return
        self._counts[kind] += 1
        self._emit(kind, message, title)

    def flush(self) -> None:
        """Emit one annotation that lists what the cap held back."""
        for kind, held in self._overflow.items():
            if held:
                more = "; ".join(held[:20]) + (" ..." if len(held) > 20 else "")
                self._emit(kind, f"{len(held)} more: {more}", title=f"{len(held)} further {kind}s")
                held.clear()


def set_output(name: str, value: str, output_path: Path | None) -> bool:
    """Write a step output (multi-line safe: actions-toolkit uses a random heredoc delimiter).

    False when there is no output file or it cannot be written (the caller warns): the results
    are already on disk, and losing an output must not turn into a traceback.
    """
    if output_path is None:
        return False
    from actions_toolkit.file_command import prepare_key_value_message

    try:
        with output_path.open("a", encoding="utf-8", newline="") as handle:
            handle.write(prepare_key_value_message(name, value) + os.linesep)
    except OSError:
        return False
    return True


def set_outputs(outputs: Mapping[str, str], output_path: Path | None, annotations: "Annotations") -> None:
    """Write every step output; one warning if the output file cannot be written."""
    if output_path is None:
        return
    failed = [name for name, value in outputs.items() if not set_output(name, value, output_path)]
    if failed:
        annotations.warning(
            f"Could not write the step outputs ({', '.join(failed)}) to GITHUB_OUTPUT "
            f"{output_path}; the results are on disk, but later steps will not see these outputs."
        )
        annotations.flush()


def mask(value: str | None, enabled: bool) -> None:
    """Ask the runner to mask a secret in every later log line."""
    if value and enabled:
        from actions_toolkit import core

        for line in value.splitlines():
            if line.strip():
                core.set_secret(line)


def append_summary(markdown: str, summary_path: Path | None) -> bool:
    """Append to the job summary within GitHub's 1 MiB per-step limit; False when there is none."""
    if summary_path is None:
        return False
    used = summary_path.stat().st_size if summary_path.is_file() else 0
    room = MAX_SUMMARY_BYTES - used
    data = markdown.encode("utf-8")
    if len(data) + 1 > room:
        note = "\n\n_The rest was cut: a job summary holds at most 1 MiB per step._\n".encode()
        keep = max(room - len(note) - 1, 0)
        data = data[:keep].decode("utf-8", "ignore").encode("utf-8") + note if keep else b""
    if not data:
        return False
    with summary_path.open("ab") as handle:
        handle.write(data + b"\n")
    return True

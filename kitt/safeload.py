"""Reading files kitt does not trust: a size cap, text that must be UTF-8, bounded nesting, no YAML aliases.

Suite files, thresholds files, result sets (perhaps from a fork's artifact) and the runner's event
payload all pass through here, so that a binary file, a huge one, a YAML alias bomb or JSON nested
100,000 deep ends in one kitt error instead of a traceback or a MemoryError. The caller passes the
error class (UsageError for what the user wrote, ResultsError for results) and words the "what".

    YAML_MAX_BYTES   1 MiB   suite and thresholds files
    JSON_MAX_BYTES   64 MiB  metrics.json, hardware.json, config.json, event payloads
    MAX_NESTING      100     levels of lists and mappings in any of them
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

from kitt.errors import KittError

YAML_MAX_BYTES = 1024 * 1024
JSON_MAX_BYTES = 64 * 1024 * 1024
MAX_NESTING = 100


def read_text(path: Path, what: str, error: type[KittError], max_bytes: int) -> str:
    """The file's text; ``error`` when it is missing, too large, unreadable or not UTF-8 text."""
    path = Path(path)
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError
        if not stat.S_ISREG(info.st_mode):  # a FIFO would block the read forever, a device never end
            raise error(f"{what} {path} is not a regular file", hint="Point kitt at a file.")
        size = info.st_size
        if size > max_bytes:
            raise error(
                f"{what} {path} is {size:,} bytes, more than kitt's limit of {max_bytes:,}",
                hint="Point kitt at the right file; see Limits in the README.",
            )
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)  # the file may grow between stat and read
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise error(f"{what} {path} is a directory, not a file") from None
    except OSError as exc:
        raise error(f"{what} {path} cannot be read ({exc.strerror or exc})") from None
    if len(data) > max_bytes:
        raise error(f"{what} {path} is more than kitt's limit of {max_bytes:,} bytes")
    if b"\0" in data:
        raise error(f"{what} {path} is a binary file, not text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{what} {path} is not UTF-8 text (byte {exc.start})") from None


def parse_yaml(text: str, where: str, error: type[KittError]) -> Any:
    """YAML through the safe loader, with anchors and aliases refused (an alias bomb expands
    a kilobyte into gigabytes) and nesting bounded."""
    import yaml  # type: ignore[import-untyped]

    class NoAliasLoader(yaml.SafeLoader):  # type: ignore[misc]
        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                mark = self.peek_event().start_mark
                raise yaml.composer.ComposerError(None, None, "YAML aliases (*name) are not allowed", mark)
            return super().compose_node(parent, index)

    try:
        data = yaml.load(text, Loader=NoAliasLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        # Say where, never what: the offending line may be a secret (an env file passed by mistake).
        raise error(
            f"{where} is not valid YAML ({_yaml_where(exc)})",
            hint="Check that it is the YAML file you meant; its content is not shown.",
        ) from None
    except RecursionError:
        raise error(f"{where} is nested too deeply") from None
    _check_depth(data, where, error)
    return data


def _yaml_where(exc: Exception) -> str:
    """``line L, column C: problem`` of a YAML error, without the snippet of the file yaml quotes."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = str(getattr(exc, "problem", None) or getattr(exc, "context", None) or "cannot be parsed")
    problem = " ".join(problem.split())
    if "'" in problem or '"' in problem:  # yaml quotes the character it found: keep only the kind
        problem = problem.split("'")[0].split('"')[0].rstrip(" :,") or "unexpected content"
    if mark is None:
        return problem
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"


def parse_json(text: str, where: str, error: type[KittError]) -> Any:
    """JSON with nesting bounded; NaN and Infinity stay allowed (Python writes them), callers check numbers."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise error(f"{where} is nested more than {MAX_NESTING} levels deep") from None
    except ValueError as exc:
        raise error(
            f"{where} is not valid JSON ({exc})", hint="The run that wrote it probably failed; rerun the benchmark."
        ) from None
    _check_depth(data, where, error)
    return data


def load_json(path: Path, what: str, error: type[KittError], max_bytes: int = JSON_MAX_BYTES) -> Any:
    return parse_json(read_text(path, what, error, max_bytes), f"{what} {path}", error)


def _check_depth(data: Any, where: str, error: type[KittError]) -> None:
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > MAX_NESTING:
                raise error(f"{where} is nested more than {MAX_NESTING} levels deep")
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))

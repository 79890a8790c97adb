"""Parse mermaid diagrams with the real mermaid package (npm), in node with jsdom for its DOM.

mermaid's ``parse`` runs its Jison grammar and DOMPurify, which needs a ``window``: jsdom gives it
one, so no browser is needed to check that a chart parses. (Whether it *renders* well, in a
real browser, is the comment-rendering check's business.) The packages are installed once, pinned,
into the test cache (``~/.cache/kitt-tests/mermaid-<version>``; about 170 MB, well under a minute
from npm here).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

MERMAID_VERSION = "11.17.2"
JSDOM_VERSION = "25.0.1"

_SCRIPT = r"""
import { JSDOM } from "jsdom";
import { readFileSync } from "node:fs";
const dom = new JSDOM("<!doctype html><html><body></body></html>");
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import("mermaid");
mermaid.initialize({ startOnLoad: false });
const out = [];
for (const text of JSON.parse(readFileSync(0, "utf8"))) {
  try {
    const parsed = await mermaid.parse(text);
    out.push({ ok: true, type: parsed.diagramType });
  } catch (error) {
    out.push({ ok: false, error: String(error.message || error).split("\n").slice(0, 4).join(" ") });
  }
}
console.log(JSON.stringify(out));
"""


class MermaidUnavailable(RuntimeError):
    pass


def _cache() -> Path:
    root = Path(os.environ.get("KITT_TEST_CACHE") or Path.home() / ".cache" / "kitt-tests")
    root.mkdir(parents=True, exist_ok=True)
    return root


def ensure_mermaid() -> Path:
    """The folder holding node_modules/mermaid and the parse script; installed on first use."""
    target = _cache() / f"mermaid-{MERMAID_VERSION}-jsdom-{JSDOM_VERSION}"
    if (target / "parse.mjs").is_file():
        return target
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise MermaidUnavailable("node and npm are needed to parse mermaid charts with the mermaid package")
    work = Path(tempfile.mkdtemp(dir=target.parent, prefix=".mermaid-"))
    proc = subprocess.run(
        [
            npm,
            "install",
            "--no-audit",
            "--no-fund",
            "--ignore-scripts",
            "--prefix",
            str(work),
            f"mermaid@{MERMAID_VERSION}",
            f"jsdom@{JSDOM_VERSION}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        shutil.rmtree(work, ignore_errors=True)
        raise RuntimeError(f"npm install mermaid@{MERMAID_VERSION} failed: {proc.stderr.strip()[-500:]}")
    (work / "parse.mjs").write_text(_SCRIPT, encoding="utf-8")
    try:
        os.replace(work, target)
    except OSError:  # another process finished first
        shutil.rmtree(work, ignore_errors=True)
    return target


def parse(diagrams: list[str]) -> list[dict[str, object]]:
    """mermaid.parse() on each diagram: ``{"ok": True, "type": ...}`` or ``{"ok": False, "error": ...}``."""
    folder = ensure_mermaid()
    proc = subprocess.run(
        ["node", str(folder / "parse.mjs")],
        input=json.dumps(diagrams),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=folder,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"node parse.mjs failed: {proc.stderr.strip()[-500:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def mermaid_blocks(markdown: str) -> list[str]:
    """The body of every ```mermaid fence in ``markdown``."""
    import re

    return re.findall(r"^```mermaid\n(.*?)^```$", markdown, flags=re.M | re.S)

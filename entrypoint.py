#!/usr/bin/env python3
"""Entry point of both flavours of kitt/benchmark-action (action.yml and report/action.yml).

It only hands the runner's environment to the library: kitt.action reads the INPUT_* values,
runs the benchmark and/or the report, writes the step outputs and returns the exit code.
"""

import sys

from kitt.action import main

if __name__ == "__main__":
    sys.exit(main())

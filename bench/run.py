"""Run the benchmark suite from a source checkout: python bench/run.py [--quick] [--json] [--save]."""

import sys

from shammah_tui.cli import main

sys.exit(main(["bench", *sys.argv[1:]]))

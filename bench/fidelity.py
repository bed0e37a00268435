"""Fidelity: real QEMU 7.2 migrations over the configuration matrix vs the simulator.

Run: .venv/bin/hvlab bench fidelity   (or python bench/fidelity.py [--configs ...]
[--runs N] [--smoke] [--rescore DIR]). Writes reports/fidelity/<run-id>/ (guestperf-style
JSON per run, table.md, summary.json, host.json, plots/); prints the table. Asserts
nothing: tests/test_fidelity.py checks the scorer on one smoke run.
"""

from __future__ import annotations

import sys

from harness.fidelity.bench import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

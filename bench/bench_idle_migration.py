"""An idle guest's migration: real QEMU 7.2 vs the simulator process, side by side.

Both are launched bare, as QEMU's own avocado migration test launches them (default
machine ``pc``, 128 MiB, ``-nodefaults``, nothing to boot), and migrate over a unix
socket. Prints per machine the median of each side's bytes on the wire
(``ram.transferred``), zero and normal pages, the hypervisor's own ``total-time`` and
the wall time from ``migrate`` to ``completed``, and the simulator/real ratios. Usage:
    .venv/bin/python bench/bench_idle_migration.py [ROUNDS]
"""

from __future__ import annotations

import shutil
import statistics
import sys

from harness.bare import IdleMigration, idle_migration
from harness.cliparse import rounds_argument
from harness.runner import private_dir

SIMULATOR = [sys.executable, "-m", "simulator", "--profile", "qemu-7.2"]
MACHINES = ("pc", "q35", "isapc")


def _median(runs: list[IdleMigration]) -> dict[str, float]:
    def med(values: list[float]) -> float:
        return float(statistics.median(values))

    return {
        "bytes": med([r.transferred for r in runs]),
        "zero": med([r.query["ram"]["duplicate"] for r in runs]),
        "normal": med([r.query["ram"]["normal"] for r in runs]),
        "total_ms": med([r.total_time_ms for r in runs]),
        "wall_ms": med([r.wall_s * 1000 for r in runs]),
    }


def main(rounds: int = 3) -> int:
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        print("bench_idle_migration: qemu-system-x86_64 is not installed", file=sys.stderr)
        return 1
    head = f"{'machine':<8}{'side':<6}{'bytes':>11}{'zero pg':>9}{'normal pg':>10}"
    print(f"{head}{'total ms':>10}{'wall ms':>9}")
    for machine in MACHINES:
        sides = {}
        for side, binary in (("real", [qemu]), ("sim", SIMULATOR)):
            runs = []
            for _ in range(rounds):
                folder = private_dir("hvlab-idle-")
                try:
                    runs.append(idle_migration(binary, folder, ["-machine", machine]))
                finally:
                    shutil.rmtree(folder, ignore_errors=True)
            m = sides[side] = _median(runs)
            print(
                f"{machine:<8}{side:<6}{m['bytes']:>11.0f}{m['zero']:>9.0f}{m['normal']:>10.0f}"
                f"{m['total_ms']:>10.0f}{m['wall_ms']:>9.1f}"
            )
        real, sim = sides["real"], sides["sim"]
        ratios = {k: sim[k] / real[k] if real[k] else float("nan") for k in real}
        print(
            f"{machine:<8}{'s/r':<6}{ratios['bytes']:>10.2f}x{ratios['zero']:>8.2f}x"
            f"{ratios['normal']:>9.2f}x{ratios['total_ms']:>9.2f}x{ratios['wall_ms']:>8.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(rounds_argument("bench_idle_migration.py", __doc__, sys.argv[1:], default=3)))

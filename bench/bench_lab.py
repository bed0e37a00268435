"""The lab, measured: cross-host vs same-host migration, and sharding over host pairs.

1. The same guest (x86_64 q35, 256 MiB, 32 MiB pattern) migrated over tcp on real QEMU:
   both VMs on one host vs labA -> labB over the namespace lab's link (SSH control,
   stream over the veth/bridge link). Median of ROUNDS; total-time from query-migrate
   and the wall time of the whole migration as the harness sees it.
2. The cross-host migration suites (migration, cancel, limitations) on qemu-x86_64:
   one run on one pair vs two runs at once, each on its own pair with half the tests
   (--shard 1/2 and 2/2 with --lab-hosts), merged with ``hvlab report --merge``.
   Both on this 2-core machine, so the two shards share the CPUs.

    .venv/bin/python bench/bench_lab.py [ROUNDS]
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from harness import migration, workload
from harness.cliparse import rounds_argument
from harness.fixtures import VMFactory, destination
from harness.guest import guest_image
from harness.hostset import HostSet
from harness.inventory import parse_inventory
from harness.lab.netlab import NetLab
from harness.migration import Transport
from harness.runner import private_dir
from harness.spec import Arch, MachineType, Topology, VMSpec
from harness.targets.qemu import QemuTarget

ROOT = Path(__file__).resolve().parents[1]
SPEC = VMSpec(machine=MachineType.Q35, topology=Topology(2, 2, 1, 1), memory_mib=256)


def one_migration(vms: VMFactory) -> tuple[float, float]:
    src = vms.launch(SPEC, "src")
    workload.write_pattern(src, 32)
    dst = destination(vms, SPEC, Transport.TCP)
    start = time.monotonic()
    result = migration.migrate(src, dst, Transport.TCP, {"max-bandwidth": 1 << 30})
    wall = time.monotonic() - start
    assert result.status == "completed", result.final
    return float(result.final.get("total-time", 0)) / 1000, wall


def migrations(netlab: NetLab, rounds: int) -> None:
    hosts = HostSet(parse_inventory(netlab.inventory(groups=("qemu",))))
    target = QemuTarget(Arch.X86_64)
    logs = private_dir("hvlab-bench-lab-")
    same, cross = (hosts.resolve(p) for p in hosts.placements(target)[:2])
    print(f"{'placement':<16}{'total-time s':>14}{'wall s':>9}")
    medians = {}
    try:
        for name, placement in (("labA same-host", same), ("labA->labB", cross)):
            runs = []
            for i in range(rounds):
                vms = VMFactory(
                    target, logs / f"{name}-{i}", images=guest_image, placement=placement
                )
                try:
                    runs.append(one_migration(vms))
                finally:
                    vms.close()
            total = statistics.median(r[0] for r in runs)
            wall = statistics.median(r[1] for r in runs)
            medians[name] = (total, wall)
            print(f"{name:<16}{total:>14.3f}{wall:>9.2f}")
    finally:
        hosts.close()
    shutil.rmtree(logs)  # kept (the VMs' logs) only when a migration failed
    (s_total, s_wall), (c_total, c_wall) = medians["labA same-host"], medians["labA->labB"]
    print(f"cross/same: total-time x{c_total / s_total:.2f}, wall x{c_wall / s_wall:.2f}")


def shards(netlab: NetLab) -> None:
    folder = private_dir("hvlab-bench-shard-")
    inventory = folder / "hosts.ini"
    inventory.write_text(netlab.inventory(groups=("qemu",), pairs=True))
    base = [
        sys.executable, "-m", "harness.cli", "run", "--hosts", str(inventory),
        "--report-dir", str(folder / "reports"), "--target", "qemu-x86_64",
        "-k", "(labA or labC) and (test_migration or test_cancel or test_limitations)",
    ]  # fmt: skip

    def run(extra: list[str], log: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [*base, *extra], cwd=ROOT, stdout=(folder / log).open("wb"), stderr=subprocess.STDOUT
        )

    start = time.monotonic()
    ok = run(["--lab-hosts", "labA,labB"], "one.log").wait() == 0
    one = time.monotonic() - start
    start = time.monotonic()
    a = run(["--lab-hosts", "labA,labB", "--shard", "1/2"], "s1.log")
    b = run(["--lab-hosts", "labC,labD", "--shard", "2/2"], "s2.log")
    ok = a.wait() == 0 and b.wait() == 0 and ok
    two = time.monotonic() - start
    if not ok:
        raise SystemExit(f"a suite run failed: logs and reports in {folder}")
    shutil.rmtree(folder)
    print(f"migration suites on one pair: {one:.1f} s; sharded over two pairs: {two:.1f} s "
          f"(x{one / two:.2f} faster, 2 cores shared)")  # fmt: skip


def main(rounds: int = 3) -> int:
    with NetLab(("labA", "labB", "labC", "labD")) as netlab:
        migrations(netlab, rounds)
        shards(netlab)
    return 0


if __name__ == "__main__":
    sys.exit(main(rounds_argument("bench_lab.py", __doc__, sys.argv[1:], default=3)))

"""Guest start-up on real QEMU: cold TCG boot vs restore from a snapshot template.

Prints, per architecture, the median seconds from launch until the guest shell answers,
for a cold boot and for a restore of a saved booted guest (harness/templates.py), and the
ratio between them, measured side by side in one run. Usage:
    .venv/bin/python bench/bench_boot.py [ROUNDS]
"""

from __future__ import annotations

import statistics
import sys
import time
import uuid
from pathlib import Path

from harness.cliparse import rounds_argument
from harness.guest import guest_image
from harness.leaks import check_no_leaks, owner_tag
from harness.machine import Machine
from harness.runner import private_dir
from harness.spec import Arch, MachineType, Topology, VMSpec
from harness.targets.qemu import QemuTarget
from harness.templates import TemplateStore


def timed_start(target: QemuTarget, spec: VMSpec, logs: Path, owner: str, restored: bool) -> float:
    image = guest_image(target.arch)
    start = time.monotonic()
    with Machine(target, spec, image, "bench", logs, owner) as vm:
        vm.launch(wait_guest=not restored, restored=restored)
        took = time.monotonic() - start
    return took


def main(rounds: int = 3) -> int:
    logs = private_dir("hvlab-bench-")
    owner = owner_tag(f"bench-{uuid.uuid4().hex[:12]}")
    store = TemplateStore()
    print(f"{'arch':<9}{'cold boot s':>12}{'restore s':>11}{'ratio':>8}")
    try:
        for arch in Arch:
            target = QemuTarget(arch)
            spec = VMSpec(machine=MachineType.standard(arch), topology=Topology(2, 2, 2, 1, 4))
            image = guest_image(arch)
            restore = store.restore_spec(target, spec, image, owner, logs / "template")
            cold = [timed_start(target, spec, logs / "cold", owner, False) for _ in range(rounds)]
            warm = [timed_start(target, restore, logs / "warm", owner, True) for _ in range(rounds)]
            c, w = statistics.median(cold), statistics.median(warm)
            print(f"{arch.value:<9}{c:>12.2f}{w:>11.2f}{c / w:>7.1f}x")
    finally:
        store.close()
        check_no_leaks(owner)
    return 0


if __name__ == "__main__":
    sys.exit(main(rounds_argument("bench_boot.py", __doc__, sys.argv[1:], default=3)))

"""The guest's dirtying workload for the suites: hvlab-stress, or the simulator's writer.

A real guest runs hvlab-stress (harness/guest_src/hvlab-stress.c) from its console; its
output goes to a file in the guest so the console stays free for commands. The
simulator models its guest, so the same workload is given to it at launch
(``--workload ws=..,rate=..,pattern=..``): :func:`launch` hides the difference, the
suites call it the same way on every target.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from harness.errors import ConsoleError
from harness.fixtures import VMFactory
from harness.machine import Machine
from harness.spec import VMSpec
from harness.targets.sim import SimTarget
from harness.targets.traits import GuestKind
from harness.waits import wait_for

LOG = "/tmp/hvlab-stress.log"
SIM_TIME_SCALE = 4


@dataclass(frozen=True)
class Stress:
    """hvlab-stress's working set (MiB), rate (MiB/s) and pattern."""

    ws_mib: int
    rate_mib: int
    pattern: str = "cyclic"

    def command(self) -> str:
        return f"hvlab-stress -w {self.ws_mib} -r {self.rate_mib} -p {self.pattern} -o {LOG} & true"

    def workload_option(self) -> str:
        return f"ws={self.ws_mib}M,rate={self.rate_mib}M,pattern={self.pattern}"


def launch(vms: VMFactory, spec: VMSpec, stress: Stress, name: str = "src") -> Machine:
    """A booted VM whose guest dirties memory as ``stress`` says (filled and running)."""
    target = vms.target
    if target.traits.guest is GuestKind.SIMULATED:
        assert isinstance(target, SimTarget)
        # 4x real time: the simulated migration is the same in virtual time, the test
        # waits a quarter as long (every value it polls still lasts over a second)
        options = ("--workload", stress.workload_option(), "--time-scale", str(SIM_TIME_SCALE))
        variant = dataclasses.replace(target, options=(*target.options, *options))
        return vms.launch(spec, name, variant=variant)
    vm = vms.launch(spec, name)
    status, out = vm.console.run(stress.command())
    if status != 0:
        raise ConsoleError(f"{vm.name}: hvlab-stress did not start ({status}): {out}")
    wait_for(
        lambda: "stress filled" in vm.console.run(f"cat {LOG}")[1],
        120,
        f"{vm.name}: hvlab-stress to fill {stress.ws_mib} MiB",
        interval=0.5,
    )
    return vm


def verify(vm: Machine) -> str | None:
    """Ask a running hvlab-stress to check every page of its working set; its verdict
    line ("stress verify ok N" or "... bad page I"). None where the guest is modelled
    (the simulator's memory is checked with hvlab-pattern instead)."""
    if vm.target.traits.guest is GuestKind.SIMULATED:
        return None
    before = vm.console.run(f"grep -c 'stress verify' {LOG}")[1].strip()
    seen = int(before) if before.isdigit() else 0
    status, out = vm.console.run("kill -USR1 $(pidof hvlab-stress)")
    if status != 0:
        raise ConsoleError(f"{vm.name}: no hvlab-stress to verify ({status}): {out}")

    def verdict() -> str | None:
        lines = re.findall(r"stress verify .*", vm.console.run(f"cat {LOG}")[1])
        return lines[-1].strip() if len(lines) > seen else None

    return wait_for(verdict, 60, f"{vm.name}: hvlab-stress's verify line", interval=0.2)

"""The product's own log (``-D FILE``) as data: its line format and the source sites of
the lines it writes at start-up, on restore and at exit.

StratoVirt util/src/logger.rs: ``{time}: [{pid}][{tid}][{file}:{line}]:{LEVEL}: {msg}``,
the time local and to the nanosecond (``%Y-%m-%dT%H:%M:%S.%9N``); v2.4 writes the site
as ``[{file}: {line}]``. The lines (v2.4.0 / v2.5.0 sources): src/main.rs ``VmConfig is
{:?}`` once the command line is parsed (before daemonizing), ``Daemonize mode start!`` in
the daemon, hypervisor/src/kvm/mod.rs ``vcpu{} start running`` from each vCPU thread
when the VM starts (after a restore has loaded the snapshot, so a tool times a restore
from the first line to the last vCPU's), event_loop.rs ``MainLoop exits due to receive
signal {}``, src/main.rs ``MainLoop over, Vm exit`` and the error of a failed start.
QEMU's ``-D`` receives only ``-d`` debug output: nothing at start-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType


class LogLine(Enum):
    """The lines the simulator writes, by what they report."""

    VM_CONFIG = "VmConfig is {config}"
    DAEMONIZED = "Daemonize mode start!"
    VCPU_RUNNING = "vcpu{index} start running"
    SIGNAL_EXIT = "MainLoop exits due to receive signal {signal}"
    MAINLOOP_OVER = "MainLoop over, Vm exit"
    START_FAILED = "{error}"


@dataclass(frozen=True)
class LogFormat:
    """One product version's log: the site format and where each line comes from."""

    site: str  # format fields {file}, {line}
    sites: Mapping[LogLine, tuple[str, int]]

    def site_of(self, line: LogLine) -> str:
        file, number = self.sites[line]
        return self.site.format(file=file, line=number)


STRATOVIRT_24_LOG = LogFormat(
    site="[{file}: {line}]",
    sites=MappingProxyType(
        {
            LogLine.VM_CONFIG: ("src/main.rs", 100),
            LogLine.DAEMONIZED: ("src/main.rs", 135),
            LogLine.VCPU_RUNNING: ("hypervisor/src/kvm/mod.rs", 603),
            LogLine.SIGNAL_EXIT: ("machine_manager/src/event_loop.rs", 154),
            LogLine.MAINLOOP_OVER: ("src/main.rs", 104),
            LogLine.START_FAILED: ("src/main.rs", 112),
        }
    ),
)
STRATOVIRT_25_LOG = LogFormat(
    site="[{file}:{line}]",
    sites=MappingProxyType(
        {
            LogLine.VM_CONFIG: ("src/main.rs", 89),
            LogLine.DAEMONIZED: ("src/main.rs", 121),
            LogLine.VCPU_RUNNING: ("hypervisor/src/kvm/mod.rs", 621),
            LogLine.SIGNAL_EXIT: ("machine_manager/src/event_loop.rs", 160),
            LogLine.MAINLOOP_OVER: ("src/main.rs", 93),
            LogLine.START_FAILED: ("src/main.rs", 101),
        }
    ),
)

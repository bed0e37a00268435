"""The product's own log file (``-D FILE``), written in the product's format.

What is written and where it comes from is profile data (:mod:`simulator.model.product_logs`);
a profile without a log format (QEMU: ``-D`` only takes ``-d`` debug output) writes nothing.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from simulator.cmdline import SimConfig
from simulator.model.product_logs import LogFormat, LogLine


def _now() -> str:
    """util/src/logger.rs format_now: local time to the nanosecond."""
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(ns // 10**9)) + f".{ns % 10**9:09d}"


def _rust_debug(cfg: SimConfig) -> str:
    """The parts of StratoVirt's ``VmConfig`` Debug text the simulator knows."""

    def opt(value: str | None) -> str:
        return f'Some("{value}")' if value is not None else "None"

    machine = "MicroVm" if cfg.machine.value == "microvm" else "StandardVm"
    drives = ", ".join(f'"{k}": "{v}"' for k, v in cfg.drives.items())
    return (
        f"VmConfig {{ machine_config: MachineConfig {{ mach_type: {machine}, "
        f"nr_cpus: {cfg.smp.cpus}, max_cpus: {cfg.smp.maxcpus}, mem_size: {cfg.memory} }}, "
        f"boot_source: BootSource {{ kernel_file: {opt(cfg.kernel)}, "
        f'kernel_cmdline: "{cfg.append}", initrd: {opt(cfg.initrd)} }}, '
        f"drives: {{{drives}}}, incoming: {opt(cfg.incoming)} }}"
    )


class ProductLog:
    """One process's ``-D`` log: appended, private (0600), one line per event."""

    def __init__(self, fmt: LogFormat, path: str) -> None:
        self.fmt = fmt
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    @classmethod
    def open(cls, cfg: SimConfig) -> ProductLog | None:
        fmt = cfg.product_profile().product_log
        if cfg.logfile is None or fmt is None:
            return None
        return cls(fmt, cfg.logfile)

    def write(self, line: LogLine, level: str = "INFO", tid: int | None = None, **kw: Any) -> None:
        pid = os.getpid()
        thread = tid if tid is not None else threading.get_native_id()
        text = line.value.format(**kw)
        site = self.fmt.site_of(line)
        os.write(self._fd, f"{_now()}: [{pid}][{thread}]{site}:{level}: {text}\n".encode())

    def started(self, cfg: SimConfig) -> None:
        self.write(LogLine.VM_CONFIG, config=_rust_debug(cfg))

    def vcpus_running(self, thread_ids: list[int]) -> None:
        for index, tid in enumerate(thread_ids):
            self.write(LogLine.VCPU_RUNNING, tid=tid, index=index)

    def exited(self, code: int, signal: int | None, error: str | None) -> None:
        if signal is not None:
            self.write(LogLine.SIGNAL_EXIT, signal=signal)
        if error is not None:
            self.write(LogLine.START_FAILED, level="ERROR", error=error)
        elif code == 0:
            self.write(LogLine.MAINLOOP_OVER)

    def close(self) -> None:
        os.close(self._fd)

"""Lifecycle: status, stop/cont, vCPU topology, console, quit (seed 004 "管理虚拟机")."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

import pytest

from harness.errors import QMPCommandError
from harness.fixtures import VMFactory
from harness.machine import Machine
from harness.spec import Topology, VMSpec
from harness.targets.base import Target
from harness.targets.traits import GuestKind
from harness.waits import scaled
from suites.catalog import Expect


@pytest.mark.catalog("LC-GREETING")
def test_greeting_shape(
    vms: VMFactory, standard_spec: VMSpec, expect: Callable[[str], Expect]
) -> None:
    """The QMP greeting has the documented shape.

    1. It is {"QMP": {"version": ..., "capabilities": [...]}}.
    2. The version object sits under the documented key ("qemu" for QEMU; S003 says
       "StratoVirt" for StratoVirt) with integer major/minor/micro.
    3. A package string is present.
    """
    vm = vms.launch(standard_spec, wait_guest=False)
    qmp = vm.greeting["QMP"]
    assert isinstance(qmp, dict) and isinstance(qmp["capabilities"], list)
    key = expect("LC-GREETING").value
    version = qmp["version"][key]
    assert all(isinstance(version[k], int) for k in ("major", "minor", "micro"))
    assert isinstance(qmp["version"]["package"], str)


@pytest.mark.catalog("LC-STATUS-RUNNING")
def test_query_status_running(booted_vm: Machine) -> None:
    """A freshly booted VM reports that it runs.

    1. query-status answers status "running".
    2. ... and running is true.
    """
    status = booted_vm.qmp.execute("query-status")
    assert status["status"] == "running"
    assert status["running"] is True


@pytest.mark.catalog("LC-STOP", "LC-CONT")
def test_stop_then_cont(booted_vm: Machine) -> None:
    """stop pauses the VM and cont resumes it, each with its event.

    1. stop is answered and a STOP event arrives.
    2. query-status then says "paused" (the running flag: see LC-PAUSED-RUNNING-FLAG).
    3. cont is answered and a RESUME event arrives.
    4. query-status then says "running" again.
    5. The guest console answers after the resume.
    """
    vm = booted_vm
    vm.pause()
    status = vm.qmp.execute("query-status")
    assert status["status"] == "paused"
    mark = vm.qmp.events.mark()
    vm.qmp.execute("cont")
    vm.qmp.wait_event("RESUME", since=mark, timeout=10)
    status = vm.qmp.execute("query-status")
    assert (status["status"], status["running"]) == ("running", True)
    assert vm.console.run("echo alive")[1] == "alive"


@pytest.mark.catalog("LC-STOP-EVENT-ORDER")
def test_stop_event_precedes_return(vms: VMFactory, standard_spec: VMSpec) -> None:
    """The documented example shows STOP before stop's return.

    1. stop is answered and a STOP event arrives.
    2. On the wire, the STOP event came before the return of the stop command.
    """
    vm = vms.launch(standard_spec, wait_guest=False)
    before = len(vm.qmp.received())
    vm.pause()
    after = vm.qmp.received()[before:]
    kinds = ["event" if "event" in m else "return" if "return" in m else "other" for m in after]
    assert kinds.index("event") < kinds.index("return"), kinds


@pytest.mark.catalog("LC-PAUSED-RUNNING-FLAG")
def test_paused_status_running_flag(
    vms: VMFactory, standard_spec: VMSpec, expect: Callable[[str], Expect]
) -> None:
    """The guide's example output for a paused VM.

    1. After stop, status is "paused".
    2. The running flag is what the example shows (true).
    """
    vm = vms.launch(standard_spec, wait_guest=False)
    vm.pause()
    status = vm.qmp.execute("query-status")
    assert status["status"] == "paused"
    assert status["running"] is expect("LC-PAUSED-RUNNING-FLAG").value


def _cpu_query(target: Target) -> str:
    return target.traits.cpu_query.value


def _slots(topology: Topology) -> set[tuple[int, int, int]]:
    return set(
        itertools.product(range(topology.sockets), range(topology.cores), range(topology.threads))
    )


def _key(props: dict[str, int]) -> tuple[int, int, int]:
    return (props["socket-id"], props["core-id"], props.get("thread-id", 0))


@pytest.mark.catalog("LC-QUERY-CPUS")
def test_query_cpus_matches_smp(vms: VMFactory, standard_spec: VMSpec, target: Target) -> None:
    """query-cpus(-fast) lists the online vCPUs in the -smp topology.

    1. There is one entry per online vCPU (-smp cpus).
    2. Every entry's socket/core/thread ids lie inside sockets x cores x threads.
    3. No two entries share a position.
    4. The guest sees as many processors as QMP lists.
    """
    vm = vms.launch(standard_spec)
    topo = standard_spec.topology
    cpus = vm.qmp.execute(_cpu_query(target))
    assert len(cpus) == topo.cpus
    positions = [_key(c["props"]) for c in cpus]
    assert set(positions) <= _slots(topo)
    assert len(set(positions)) == len(positions)
    status, out = vm.console.run("grep -c ^processor /proc/cpuinfo")
    assert status == 0 and int(out) == topo.cpus


@pytest.mark.catalog("LC-HOTPLUGGABLE-CPUS")
def test_query_hotpluggable_cpus_shape(
    vms: VMFactory, standard_spec: VMSpec, expect: Callable[[str], Expect]
) -> None:
    """query-hotpluggable-cpus describes every possible vCPU slot (or is refused as such).

    1. Where the machine supports CPU hotplug: one entry per slot up to maxcpus.
    2. Each entry has props (socket/core/thread ids), vcpus-count 1 and a type.
    3. The slots cover sockets x cores x threads exactly once.
    4. Online vCPUs (cpus of them) carry a qom-path; offline ones do not.
    5. Where it does not (QEMU's Arm virt): a GenericError saying the feature is not enabled.
    """
    vm = vms.launch(standard_spec)
    topo = standard_spec.topology
    if expect("LC-HOTPLUGGABLE-CPUS").value == "refused":
        with pytest.raises(QMPCommandError) as info:
            vm.qmp.execute("query-hotpluggable-cpus")
        assert info.value.error_class == "GenericError"
        assert "not enabled" in info.value.desc
        return
    slots = vm.qmp.execute("query-hotpluggable-cpus")
    assert len(slots) == topo.max_cpus
    for slot in slots:
        assert {"props", "vcpus-count", "type"} <= slot.keys()
        assert slot["vcpus-count"] == 1 and isinstance(slot["type"], str)
    assert sorted(_key(s["props"]) for s in slots) == sorted(_slots(topo))
    online = [s for s in slots if "qom-path" in s]
    assert len(online) == topo.cpus
    assert len(slots) - len(online) == topo.max_cpus - topo.cpus


@pytest.mark.catalog("LC-CONSOLE")
def test_console_runs_commands(vms: VMFactory, standard_spec: VMSpec, target: Target) -> None:
    """The guest serial console runs commands and reports their status.

    1. A command's output comes back exactly.
    2. A failing command's exit status comes back.
    3. The guest reports the target's architecture.
    """
    vm = vms.launch(standard_spec)
    assert vm.console.run("echo hello-from-guest") == (0, "hello-from-guest")
    assert vm.console.run("false")[0] == 1
    assert vm.console.run("uname -m") == (0, target.arch.value)


@pytest.mark.catalog("LC-CONSOLE")
def test_console_output_nobody_reads_does_not_stall_the_vm(
    vms: VMFactory, standard_spec: VMSpec, target: Target
) -> None:
    """The guest prints on its console while the harness reads nothing (a kernel Oops,
    a background job): the hypervisor keeps running.

    1. A background job in the guest prints about 30 KB, one line after another.
    2. While nothing reads the console, query-status answers (QEMU's PL011 writes each
       byte with qemu_chr_fe_write_all: a socket nobody drains blocks the vCPU thread
       under the iothread lock, and the monitor with it; harness/console.py).
    3. The console then shows the job's last line and answers a command.
    """
    if target.traits.guest is GuestKind.SIMULATED:
        pytest.skip(f"{target.name}: the simulated guest prints only what it is asked to")
    vm = vms.launch(standard_spec)
    lines = 600
    loop = f"i=1; while [ $i -le {lines} ]; do echo flood $i of {lines} ........; i=$((i+1)); done"
    job = f"(sleep 1; {loop}) & true"
    assert vm.console.run(job)[0] == 0
    time.sleep(scaled(4))  # the job prints while nothing reads the console
    assert vm.qmp.execute("query-status", timeout=10)["status"] == "running"
    vm.console.expect(f"flood {lines} of {lines}", 60, "the job's last line")
    vm.console.sync()


@pytest.mark.catalog("LC-QUIT")
def test_quit_emits_shutdown_and_exits(vms: VMFactory, standard_spec: VMSpec) -> None:
    """quit ends the VM process after announcing it.

    1. quit is answered (or the connection closes as the process exits).
    2. A SHUTDOWN event arrives.
    3. The hypervisor process exits with status 0.
    """
    vm = vms.launch(standard_spec)
    mark = vm.qmp.events.mark()
    try:
        vm.qmp.execute("quit", timeout=10)
    except QMPCommandError:
        raise
    except Exception:
        pass
    vm.qmp.wait_event("SHUTDOWN", since=mark, timeout=10)
    assert vm.wait_exit(timeout=20) == 0

"""Lifecycle: status, stop/cont, vCPU topology, console, quit (seed 004 "管理虚拟机")."""

from __future__ import annotations

import itertools

import pytest

from harness.errors import QMPCommandError
from harness.pytest_plugin import VMFactory
from harness.spec import Topology, VMSpec
from harness.targets.base import Target


@pytest.mark.catalog("LC-STATUS-RUNNING")
def test_query_status_running(vms: VMFactory, standard_spec: VMSpec) -> None:
    """A freshly booted VM reports that it runs.

    1. query-status answers status "running".
    2. ... and running is true.
    """
    vm = vms.launch(standard_spec)
    status = vm.qmp.execute("query-status")
    assert status["status"] == "running"
    assert status["running"] is True


@pytest.mark.catalog("LC-STOP", "LC-CONT")
def test_stop_then_cont(vms: VMFactory, standard_spec: VMSpec) -> None:
    """stop pauses the VM and cont resumes it, each with its event.

    1. stop is answered and a STOP event arrives.
    2. query-status then says "paused", running false.
    3. cont is answered and a RESUME event arrives.
    4. query-status then says "running" again.
    5. The guest console answers after the resume.
    """
    vm = vms.launch(standard_spec)
    mark = vm.qmp.events.mark()
    vm.qmp.execute("stop")
    vm.qmp.wait_event("STOP", since=mark, timeout=10)
    status = vm.qmp.execute("query-status")
    assert (status["status"], status["running"]) == ("paused", False)
    mark = vm.qmp.events.mark()
    vm.qmp.execute("cont")
    vm.qmp.wait_event("RESUME", since=mark, timeout=10)
    status = vm.qmp.execute("query-status")
    assert (status["status"], status["running"]) == ("running", True)
    assert vm.console.run("echo alive")[1] == "alive"


def _cpu_query(target: Target) -> str:
    return "query-cpus-fast" if "query-cpus-fast" in target.capabilities else "query-cpus"


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
    vms: VMFactory, standard_spec: VMSpec, target: Target
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
    if "hotpluggable-cpus" not in target.capabilities:
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

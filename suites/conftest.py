"""Shared fixtures for the conformance suites (the hvlab plugin provides ``target``, ``vms``)."""

from __future__ import annotations

import pytest

from harness.spec import MachineType, Topology, VMSpec
from harness.targets.base import Target


@pytest.fixture
def topology() -> Topology:
    """2 of 4 possible vCPUs online: 2 sockets x 2 cores x 1 thread."""
    return Topology(cpus=2, sockets=2, cores=2, threads=1, maxcpus=4)


@pytest.fixture
def standard_spec(target: Target, topology: Topology) -> VMSpec:
    """The target's standard machine (q35 on x86_64, virt on aarch64), 256 MiB."""
    return VMSpec(machine=MachineType.standard(target.arch), topology=topology, memory_mib=256)

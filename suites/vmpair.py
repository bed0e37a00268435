"""Helpers the migration-type suites share: a source and a listening destination."""

from __future__ import annotations

import dataclasses
from typing import Any

from harness.machine import Machine
from harness.migration import Transport, incoming_uri
from harness.pytest_plugin import VMFactory
from harness.spec import VMSpec

PATTERN_MIB = 32


def destination(vms: VMFactory, spec: VMSpec, transport: Transport, name: str = "dst") -> Machine:
    """A destination with the source's command line plus -incoming (S003 "Migration")."""
    incoming = incoming_uri(transport, vms.target.capabilities)
    return vms.launch(dataclasses.replace(spec, incoming=incoming), name, wait_guest=False)


def migration_capabilities(vms: VMFactory) -> dict[str, bool] | None:
    """QEMU announces status changes as MIGRATION events only with the events capability."""
    return {"events": True} if "migration-events" in vms.target.capabilities else None


def tuning(vms: VMFactory, **parameters: Any) -> dict[str, Any] | None:
    """Migration parameters, on targets that have the knobs (StratoVirt has none)."""
    return parameters if "migration-tuning" in vms.target.capabilities else None


def write_pattern(vm: Machine, mib: int = PATTERN_MIB, seed: int = 7) -> str:
    status, digest = vm.console.run(f"hvlab-pattern write {mib} {seed}", timeout=120)
    assert status == 0 and len(digest) == 32, digest
    return digest


def read_pattern(vm: Machine) -> str:
    status, digest = vm.console.run("hvlab-pattern check", timeout=120)
    assert status == 0, digest
    return digest

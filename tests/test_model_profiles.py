"""Profiles are data: code reads profile fields and never asks which product it is."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from simulator.cmdline import parse
from simulator.model import PROFILES, Device, DeviceClass, MachineType, QmpError, VMSpec, World
from simulator.model.vm_migration import CONNECTION_REFUSED, migrate_precheck
from simulator.process import SimProcess

SIMULATOR = Path(__file__).resolve().parent.parent / "simulator"
PROFILES_PY = SIMULATOR / "model" / "profiles.py"
QMP = ["-qmp", "unix:/tmp/hvlab-profiles-never-bound.sock,server,nowait"]


#: Profile enums that name a product's way of doing something: code picks an
#: implementation from a table keyed by them, and never compares them.
DIALECTS = {"Engine", "CpuPlug", "UriRules", "StreamFormat"}


def _asks_for_product(node: ast.AST) -> bool:
    """``x is Engine.X``, ``x == CpuPlug.X`` (DIALECTS) or ``profile.engine.value == ...``."""
    if not isinstance(node, ast.Compare):
        return False
    for side in [node.left, *node.comparators]:
        if isinstance(side, ast.Attribute):
            if isinstance(side.value, ast.Name) and side.value.id in DIALECTS:
                return True
            inner = side.value
            if side.attr == "value" and isinstance(inner, ast.Attribute) and inner.attr == "engine":
                return True
    return False


def test_no_code_compares_the_engine() -> None:
    """Product differences are profile fields.

    1. The walk covers the simulator (model, adapters, QMP server, command line).
    2. Outside profiles.py no comparison names a member of a dialect enum (``Engine``,
       ``CpuPlug``, ``UriRules``, ``StreamFormat``) or the engine's value: the
       implementation is chosen by a lookup table keyed by the field.
    """
    files = [p for p in sorted(SIMULATOR.rglob("*.py")) if p != PROFILES_PY]
    assert {"vm_migration.py", "qmp_server.py", "cmdline.py"} <= {p.name for p in files}
    found = [
        f"{p.relative_to(SIMULATOR.parent)}:{node.lineno}"
        for p in files
        for node in ast.walk(ast.parse(p.read_text()))
        if _asks_for_product(node)
    ]
    assert found == []


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_process_runs_the_model_profile(name: str) -> None:
    """The process and the pure model agree.

    1. A simulator process's profile is the model's profile object, unchanged.
    2. A standard VM's query-hotpluggable-cpus in the pure model is ``{}`` exactly when
       the profile says so (stratovirt-doc lists the slots, as docs/cpu_hotplug.md does).
    """
    cfg = parse(["--profile", name, "-machine", "q35", "-kernel", "k", "-initrd", "i", *QMP])
    assert SimProcess(cfg).profile is PROFILES[name]
    vm = World().create_vm("vm", VMSpec(machine=MachineType.Q35), name)
    reply, _ = vm.execute("query-hotpluggable-cpus", {})
    assert (reply == {}) is PROFILES[name].standard_hotpluggable_cpus_empty
    if name == "stratovirt-doc":
        assert isinstance(reply, list) and reply


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_migrate_precheck_is_migrate_without_a_destination(name: str) -> None:
    """migrate's checks before it needs a destination, asked explicitly.

    1. Nothing listening: the precheck passes (None) where migrate says connection refused.
    2. A URI the profile rejects: the precheck gives migrate's error.
    3. A migration in progress: the precheck gives migrate's error.
    4. A device that blocks migration (vfio where the profile refuses it): same error.
    """
    w = World()
    vm = w.create_vm("vm", VMSpec(machine=MachineType.Q35), name)
    assert migrate_precheck(vm, "tcp:127.0.0.1:1") is None
    reply, _ = vm.execute("migrate", {"uri": "tcp:127.0.0.1:1"})
    assert isinstance(reply, QmpError) and reply.desc == CONNECTION_REFUSED

    for uri in ("bogus:x", "tcp:localhost:1"):
        reply, _ = vm.execute("migrate", {"uri": uri})
        if isinstance(reply, QmpError) and reply.desc != CONNECTION_REFUSED:
            assert migrate_precheck(vm, uri) == reply
        else:
            assert migrate_precheck(vm, uri) is None

    w.create_vm("dst", VMSpec(machine=MachineType.Q35), name, incoming="tcp:127.0.0.1:2")
    assert vm.execute("migrate", {"uri": "tcp:127.0.0.1:2"})[0] == {}
    busy = migrate_precheck(vm, "tcp:127.0.0.1:1")
    assert busy is not None and busy == vm.execute("migrate", {"uri": "tcp:127.0.0.1:1"})[0]

    vfio = Device("hostdev0", DeviceClass.VFIO, "vfio-pci", "pcie.0", 5)
    blocked = w.create_vm("b", VMSpec(machine=MachineType.Q35, devices=(vfio,)), name)
    reply, _ = blocked.execute("migrate", {"uri": "tcp:127.0.0.1:1"})
    assert isinstance(reply, QmpError)
    if reply.desc == CONNECTION_REFUSED:
        assert migrate_precheck(blocked, "tcp:127.0.0.1:1") is None
    else:
        assert migrate_precheck(blocked, "tcp:127.0.0.1:1") == reply

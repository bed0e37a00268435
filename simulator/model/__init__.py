"""hvlab simulator core: a pure, deterministic model of a hypervisor host.

No sockets, no wall clock, seeded randomness. Public API:

World and VMs (the QMP server, issue 4, sits on this)::

    from simulator.model import World, VMSpec, CpuTopology, Device, DeviceClass, MachineType
    w = World(seed=1)
    src = w.create_vm("src", VMSpec(machine=MachineType.Q35), "qemu-7.2")
    dst = w.create_vm("dst", VMSpec(machine=MachineType.Q35), "qemu-7.2", incoming="tcp:0:4444")
    reply, events = src.execute("migrate", {"uri": "tcp:0:4444"})   # reply: dict | list | QmpError
    w.advance(0.5)                      # virtual seconds; engines run, effects apply
    src.take_events()                   # events raised asynchronously (STOP, MIGRATION, ...)
    w.copies("guest0")                  # VMs holding the guest: exactly one after any outcome

``VM.execute(command, arguments) -> (reply, events)`` covers qmp_capabilities,
query-status, stop, cont, quit, system_reset, query-cpus, query-cpus-fast,
query-hotpluggable-cpus, device_add, device_del (PCI and vCPUs: then
``guest_ack_unplug(vm, id)``; vCPU hotplug in ``vm_cpus``),
blockdev-add/-del, netdev_add/_del, balloon, query-balloon, migrate (tcp/unix live,
``file:DIR`` snapshot on StratoVirt profiles), migrate_cancel, query-migrate,
migrate-set-parameters, query-migrate-parameters, migrate-set-capabilities,
query-migrate-capabilities, migrate-start-postcopy. ``QmpError.to_qmp()`` gives the wire
error; ``vm.profile.event_order`` says whether events precede the reply.
``World.fail_link(src)`` / ``World.kill(vm)`` inject failures.
``vm_migration.migrate_precheck(vm, uri)`` is the error migrate gives before it needs a
destination (or None): a process whose destination is another process asks it first.

Fast pure engine (benchmarks, fuzzing, the libvirt model, issue 7)::

    simulate_precopy(PrecopyConfig(layout=MemoryLayout(...), workload=Workload(...),
                                   params=MigrationParameters(...), caps=frozenset(...)),
                     max_time=..., postcopy_at=..., cancel_at=..., fail_at=...)
        -> MigrationResult(status, query, history, samples, throttle_steps, ...)

``QemuPrecopy`` / ``StratoMigration`` are the step-wise engines (``run_until(t)``,
``cancel``, ``fail``); their ``tl`` timeline carries effects, events and samples, and the
bitmap (``engine.segs``: ``[start, end, dirty, nonzero, cached]`` page ranges) is what a
transport would carry per round. ``MemoryLayout.extents`` and ``Workload.extents`` place
non-zero data and the working set where a real guest has them; ``Host`` carries the
constants ``hvlab bench fidelity`` calibrates (``load_host``, ``--host FILE``).
Profiles: ``PROFILES`` (stratovirt-doc, stratovirt-2.4, stratovirt-2.5, qemu-7.2);
``VMSpec.arch`` says which build (x86_64 or aarch64) a VM is.
"""

from simulator.model import vm_cpus as _vm_cpus  # noqa: F401  (registers commands)
from simulator.model import vm_hotplug as _vm_hotplug  # noqa: F401
from simulator.model import vm_migration as _vm_migration  # noqa: F401
from simulator.model.clock import VirtualClock
from simulator.model.devices import (
    CpuTopology,
    Device,
    DeviceClass,
    MachineType,
)
from simulator.model.errors import ErrorClass, Event, QmpError, Reply
from simulator.model.host import Arch, Host
from simulator.model.memory import DirtyPattern, MemoryImage, MemoryLayout, Workload
from simulator.model.migration.effects import Effect, Sample
from simulator.model.migration.params import Capability, MigrationParameters
from simulator.model.migration.qemu_precopy import PrecopyConfig, QemuPrecopy
from simulator.model.migration.simulate import MigrationResult, simulate_precopy
from simulator.model.migration.status import MigrationStatus
from simulator.model.migration.stratovirt import StratoConfig, StratoMigration
from simulator.model.profiles import PROFILES, Profile
from simulator.model.spec import VMSpec
from simulator.model.vm import VM, RunState
from simulator.model.vm_hotplug import guest_ack_unplug
from simulator.model.world import World

__all__ = [
    "PROFILES",
    "VM",
    "Arch",
    "Capability",
    "CpuTopology",
    "Device",
    "DeviceClass",
    "DirtyPattern",
    "Effect",
    "ErrorClass",
    "Event",
    "Host",
    "MachineType",
    "MemoryImage",
    "MemoryLayout",
    "MigrationParameters",
    "MigrationResult",
    "MigrationStatus",
    "PrecopyConfig",
    "Profile",
    "QemuPrecopy",
    "QmpError",
    "Reply",
    "RunState",
    "Sample",
    "StratoConfig",
    "StratoMigration",
    "VMSpec",
    "VirtualClock",
    "Workload",
    "World",
    "guest_ack_unplug",
    "simulate_precopy",
]

"""The vCPU hotplug claims of the behaviour catalog (suites/test_cpu_hotplug.py).

The seeds document vCPUs that are online or offline and the queries that show them
(S004 查询拓扑, 查询vCPU上线情况), not how one is brought online; StratoVirt's own page
does (docs/cpu_hotplug.md, x86_64 q35 only), so each claim cites the S004 section and
names that page. QEMU's equivalent (docs/system/cpu-hotplug.rst) differs in how a vCPU is
named and announced:

- StratoVirt: ``device_add {"driver":"generic-x86-cpu","id":ID,"cpu-id":N}`` with
  cpus <= N < maxcpus; ``CPU_RESIZE`` follows the plug and the unplug request; the guest
  ejects the vCPU later without an event.
- QEMU 7.2: ``device_add`` of the type query-hotpluggable-cpus lists, with the slot's
  socket-id/core-id/thread-id; no event on plug; ``device_del`` is a request the guest
  completes, and then ``DEVICE_DELETED`` names the vCPU's lapic child
  (``/machine/peripheral/<id>/lapic``; seen here with 7.2 and a Linux 6.1 guest, no
  DEVICE_DELETED names the vCPU itself). A vCPU outside the -smp topology is refused by
  x86_cpu_pre_plug (hw/i386/x86.c).

Values: the event a plug raises ("" for none); for an unplug, the event and the data it
carries (``{id}`` stands for the device id); or the ErrorReply of a refusal (for the
suite's topology: 2 sockets x 2 cores x 1 thread, maxcpus 4).
"""

from __future__ import annotations

from suites.claim import NA, SIM_QEMU, Claim, D, ErrorReply, H

S004 = "004_4935a8ebb2e196c7.txt (openEuler StratoVirt guide, 管理虚拟机)"
ONLINE = "查询vCPU上线情况; how: StratoVirt docs/cpu_hotplug.md"
QEMU_ARM = NA("QEMU 7.2's Arm virt machine has no vCPU hotplug (has_hotpluggable_cpus is false)")


CPU_CLAIMS = [
    Claim(
        "CPU-HOTPLUG",
        S004,
        f"{ONLINE} Hotplug CPU",
        "On x86_64 q35, device_add of an offline vCPU (generic-x86-cpu, cpu-id in [cpus, "
        "maxcpus)) returns {}, CPU_RESIZE follows and the guest has the vCPU (QEMU: the "
        "slot's type and socket/core/thread ids, and no event)",
        doc_value="CPU_RESIZE",
        expect={
            # QEMU hw/i386/x86.c x86_cpu_plug raises no QMP event (ACPI notifies the guest)
            "qemu": H(""),
            "qemu-aarch64": QEMU_ARM,
        },
    ),
    Claim(
        "CPU-HOTPLUG-LISTED",
        S004,
        "查询拓扑 (after docs/cpu_hotplug.md's hotplug)",
        "After a vCPU hotplug the vCPU list (query-cpus; QEMU: query-cpus-fast) shows the "
        "new vCPU at its socket/core/thread position",
        expect={
            "qemu-aarch64": QEMU_ARM,
            "stratovirt-2.5": D(
                "cpu/src/lib.rs CpuTopology::online_mask is set for the boot vCPUs when the "
                "machine is created and never written again; standard_common/mod.rs "
                "query_cpus lists only the vCPUs it marks"
            ),
        },
    ),
    Claim(
        "CPU-HOTPLUG-MAX",
        S004,
        f"{ONLINE} Hotplug CPU",
        "A vCPU beyond maxcpus (cpu-id = maxcpus) is refused",
        doc_value=ErrorReply(),
        expect={
            # hw/i386/x86.c x86_cpu_pre_plug: index 4 of 2x2x1 is socket 2
            "qemu": H(ErrorReply("GenericError", "Invalid CPU socket-id: 2 must be in range 0:1")),
            "qemu-aarch64": QEMU_ARM,
            # machine/src/standard_common/mod.rs plug_cpu_device
            "stratovirt-2.5": H(ErrorReply("GenericError", "Max cpu-id is 3")),
        },
    ),
    Claim(
        "CPU-UNPLUG",
        S004,
        f"{ONLINE} Hotunplug CPU",
        "device_del of a hot-plugged vCPU returns {}, CPU_RESIZE follows and the guest lets "
        "the vCPU go (QEMU: once the guest ejected it, DEVICE_DELETED for its lapic)",
        doc_value=("CPU_RESIZE", {}),  # qmp_schema.rs CpuResize carries no data
        expect={
            # hw/acpi/cpu.c: the guest's _EJ0 unplugs the vCPU; seen here: DEVICE_DELETED
            # for /machine/peripheral/<id>/lapic, none for the vCPU
            "qemu": H(("DEVICE_DELETED", {"path": "/machine/peripheral/{id}/lapic"})),
            "qemu-aarch64": QEMU_ARM,
        },
    ),
    Claim(
        "CPU-HOTPLUG-MIGRATE",
        S004,
        f"{ONLINE} Hotplug CPU, then 迁移虚拟机 (the destination is started as the source was)",
        "A VM with a hot-plugged vCPU, migrated to a destination started without it: the "
        "destination refuses the stream (a migration needs the same devices on both sides, "
        "QEMU docs/devel/migration.rst) and exits; the source keeps its guest",
        # the destination's error text (QEMU: the vCPU's cpu_common section, instance =
        # its index, is unknown there: migration/savevm.c qemu_loadvm_section_start_full)
        doc_value="Unknown savevm section or instance 'cpu_common' 2",
        expect={
            "qemu-aarch64": QEMU_ARM,
            "stratovirt-doc": NA(
                "the StratoVirt documents say nothing of hot-plugged vCPUs in a migration"
            ),
            "stratovirt-2.5": NA(
                "not read in StratoVirt's source (its migration compares the configuration "
                "in check_vm_config; whether that covers a hot-plugged vCPU is open)"
            ),
        },
    ),
    Claim(
        "CPU-UNPLUG-MIGRATE",
        S004,
        f"{ONLINE} Hotunplug CPU, then 迁移虚拟机",
        "After a hot-plugged vCPU was unplugged (the guest ejected it), the VM migrates to "
        "a destination started as the source was: the migration completes and the guest "
        "runs there with its memory",
        doc_value="completed",
        expect={
            "qemu": NA(
                "QEMU 7.2 (x86_64 q35, TCG) races here, so no outcome can be asserted: "
                "migrated once DEVICE_DELETED for the vCPU's lapic arrived, 7 of 14 tries "
                "here completed; in the others the source segfaulted in libc (the "
                "destination then fails: check_section_footer: Read section footer "
                "failed: -5) or stayed in setup for good with the destination active. "
                "Consistent with an ejected vCPU whose thread is gone while the CPU is "
                "still on the CPU list (hw/acpi/cpu.c eject -> cpu_remove_sync)"
            ),
            "qemu-aarch64": QEMU_ARM,
            SIM_QEMU: H("completed"),
            "stratovirt-doc": NA("the StratoVirt documents say nothing of it"),
            "stratovirt-2.5": NA("not read in StratoVirt's source"),
        },
    ),
]

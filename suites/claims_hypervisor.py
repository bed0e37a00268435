"""The hypervisor claims of the behaviour catalog: lifecycle, migration, cancel,
snapshot, hotplug and limitations, from the StratoVirt documents (seeds 003, 004).
"""

from __future__ import annotations

from suites.claim import FAILED, NA, Claim, D, ErrorReply, H, SlotLimit

S003 = "003_585c41c56a10f92f.txt (StratoVirt docs/migration.md)"
S004 = "004_4935a8ebb2e196c7.txt (openEuler StratoVirt guide, 管理虚拟机)"
QEMU_NA_STRATO = NA("StratoVirt-specific documentation; QEMU documents no such rule")


HYPERVISOR_CLAIMS = [
    # -- lifecycle (S004 查询虚拟机信息 / 管理虚拟机生命周期) --------------------------------
    Claim(
        "LC-GREETING",
        S004,
        "连接虚拟机",
        "On connect the QMP server greets with "
        '{"QMP":{"version":{...},"capabilities":[]}}; S003 keys the version "StratoVirt"',
        doc_value="StratoVirt",
        expect={
            "qemu": H("qemu"),
            "stratovirt-2.5": D(
                "machine_manager/src/qmp/qmp_response.rs: version "
                'serialized under "qemu", package "StratoVirt-2.x"',
                "StratoVirt",
            ),
        },
    ),
    Claim("LC-STATUS-RUNNING", S004, "查询状态", "query-status of a booted VM: status running"),
    Claim("LC-STOP", S004, "暂停虚拟机", "stop pauses all vCPUs: STOP event, status paused"),
    Claim(
        "LC-STOP-EVENT-ORDER",
        S004,
        "暂停虚拟机",
        "The STOP event is sent before stop's return (the example's order)",
        expect={
            "qemu": H(),
            "stratovirt-2.4": H(),
            "stratovirt-2.5": D(
                "qmp_channel.rs async_send_event (commit 69feaed0): "
                "events are queued, the return is written first"
            ),
        },
    ),
    Claim(
        "LC-PAUSED-RUNNING-FLAG",
        S004,
        "制作快照 step 3",
        "query-status of a paused VM "
        'shows "running":true with "status":"paused" (the example\'s output)',
        doc_value=True,
        expect={
            "qemu": D("qapi/run-state.json: running is false unless the VM runs", True),
            "stratovirt-2.5": D(
                "machine_manager/src/machine.rs query_status: running is state == Running", True
            ),
        },
    ),
    Claim("LC-CONT", S004, "恢复虚拟机", "cont resumes: RESUME event, status running"),
    Claim("LC-QUIT", S004, "退出虚拟机", "quit returns, SHUTDOWN follows, the process exits"),
    Claim(
        "LC-QUERY-CPUS",
        S004,
        "查询拓扑",
        "query-cpus lists each vCPU with socket/core/"
        "thread ids matching -smp (QEMU: query-cpus-fast)",
    ),
    Claim(
        "LC-HOTPLUGGABLE-CPUS",
        S004,
        "查询vCPU上线情况",
        "query-hotpluggable-cpus lists "
        "every vCPU slot; online ones carry qom-path, offline ones do not",
        expect={
            "qemu-aarch64": H("refused"),
            "stratovirt-2.5": D(
                "machine/src/standard_common/mod.rs: a standard VM answers "
                "query-hotpluggable-cpus with {} (an empty object); only microvm lists slots"
            ),
        },
    ),
    Claim(
        "LC-CONSOLE",
        S004,
        "创建并启动虚拟机",
        "The guest runs and its serial console answers commands",
    ),
    # -- live migration (S003, S004 虚拟机热迁移) -----------------------------------------
    Claim(
        "MIG-TCP",
        S003,
        "Transports / Migration",
        "Migration over tcp completes; the "
        "destination (same command line plus -incoming tcp:) runs the guest",
    ),
    Claim(
        "MIG-UNIX",
        S003,
        "Transports / Migration",
        "Migration over a unix socket completes on one host",
    ),
    Claim(
        "MIG-STATUS-SEQUENCE",
        S003,
        "Query migration state",
        "query-migrate moves through setup -> active -> completed",
        doc_value=("setup", "active", "completed"),
        expect={"qemu": H(("setup", "active", "device", "completed"))},
    ),
    Claim(
        "MIG-GUEST-INTEGRITY",
        S004,
        "热迁移操作",
        "The business is not interrupted: "
        "guest memory written before migration is intact on the destination",
    ),
    Claim(
        "MIG-SOURCE-AFTER",
        S004,
        "结束热迁移",
        "After success the source VM is destroyed automatically",
        doc_value="exits",
        expect={"qemu": H("postmigrate")},
    ),
    Claim(
        "MIG-MACHINE-TYPES",
        S003,
        "Limitations",
        "Only q35 (x86_64) and virt (aarch64) live-migrate; microvm does not",
        doc_value=ErrorReply(),
        expect={
            "qemu": NA(
                "QEMU documents microvm migration as supported; the StratoVirt rule does not apply"
            ),
            # machine/src/micro_common/mod.rs MigrateInterface::migrate (tcp/unix)
            "stratovirt-2.5": H(ErrorReply("GenericError", "MicroVM does not support migration")),
        },
    ),
    # -- cancellation ---------------------------------------------------------------------
    Claim(
        "CANCEL-ACTIVE",
        S003,
        "Cancel Migration",
        "migrate_cancel during the transfer returns {} and the migration ends canceled",
        doc_value="canceled",
        expect={"qemu": H("cancelled")},
    ),
    Claim(
        "CANCEL-SOURCE-RUNS",
        S004,
        "取消热迁移",
        "After a cancel the source keeps running and its guest answers",
    ),
    Claim(
        "CANCEL-DST-EXITS",
        S004,
        "取消热迁移",
        "After a cancel the destination leaves the migration task (exits)",
    ),
    Claim(
        "CANCEL-SETUP",
        S003,
        "Cancel Migration",
        "migrate_cancel before the transfer starts (setup) cancels too",
        doc_value="canceled",
        expect={
            "qemu": H("cancelled"),
            "stratovirt-2.5": D(
                "migration/src/lib.rs: migrate connects (TcpStream::connect) inside the QMP "
                "handler and the thread it spawns sets active at once (migration.rs "
                "send_migration), so a migration never waits in setup: against a port that "
                "does not answer, migrate itself blocks until the kernel gives up",
                "canceled",
            ),
        },
    ),
    Claim("CANCEL-RETRY", S004, "取消热迁移", "A migration after a cancel succeeds"),
    Claim(
        "CANCEL-AFTER-COMPLETE",
        S003,
        "Query migration state",
        "migrate_cancel after completion does not undo it: status stays completed",
        doc_value="completed",
        expect={
            "stratovirt-2.5": D(
                "migration/src/protocol.rs MigrationStatus::transfer allows completed -> "
                "active only: migrate_cancel after a completed migration answers GenericError "
                "'Failed to transfer migration status from completed to canceled.' (S003 "
                'shows {"return":{}})'
            ),
        },
    ),
    # -- snapshot (S004 虚拟机内存快照) ------------------------------------------------------
    Claim(
        "SNAP-PAUSED",
        S004,
        "制作快照 1-3",
        "A snapshot is taken of a paused VM (stop, STOP event, status paused)",
    ),
    Claim(
        "SNAP-FILES",
        S004,
        "制作快照 4-5",
        "migrate to file:DIR completes and writes "
        "memory and state; memory is about the VM's memory size",
        doc_value="memory+state",
        expect={"qemu": H("stream")},
    ),
    Claim(
        "SNAP-RESTORE",
        S004,
        "从快照文件中恢复虚拟机",
        "-incoming with the snapshot restores the VM, which continues from the snapshot point",
    ),
    Claim(
        "SNAP-RESTORE-MISMATCH",
        S004,
        "恢复虚拟机 注意事项",
        "Restoring with a different configuration (memory size) fails",
        expect={
            "stratovirt-2.5": D(
                "machine/src/lib.rs init_memory: with -incoming file: (mapped=true by "
                "default) guest RAM is mmapped from DIR/memory with the snapshot's layout, -m "
                "is not used; migration/src/snapshot.rs compares no configuration on restore"
            ),
        },
    ),
    Claim(
        "SNAP-MACHINES",
        S004,
        "恢复虚拟机 注意事项",
        "Snapshots work on microvm, q35 and virt",
        expect={"qemu-aarch64": NA("QEMU has no microvm machine for aarch64")},
    ),
    Claim(
        "SNAP-RETURN-PATH",
        S004,
        "制作快照 4-5 (QEMU: migrate exec:, with postcopy-ram on)",
        "A snapshot completes also with postcopy-ram on (QEMU 7.2 does not: everything "
        "is written, yet it stays active in finish-migrate, and migrate_cancel reaches "
        "cancelling only)",
        doc_value=("completed", "postmigrate", "completed"),
        expect={
            # (status, runstate) once all RAM is written; the status after migrate_cancel
            "qemu": D(
                "migration/migration.c migration_thread opens the return path when "
                "postcopy-ram or return-path is on; over exec: it is the command's stdout, "
                "where no QEMU sends MIG_RP_MSG_SHUT, so migration_completion "
                "(await_return_path_close_on_source) waits for good; migrate_cancel "
                "cannot shut an exec channel down (seen: active/finish-migrate, then "
                "cancelling for good)",
            ),
            "stratovirt-doc": NA("the StratoVirt documents have no postcopy-ram capability"),
            "stratovirt-2.5": NA("StratoVirt has no postcopy-ram capability"),
        },
    ),
    # -- hotplug (S004 热插拔磁盘 / 网卡 / 直通设备) ------------------------------------------
    Claim(
        "HP-BLK-STD",
        S004,
        "热插磁盘 标准机型",
        "A disk hot-plugged into a root port (bus=<root port id>, addr=0x0) appears in the guest",
    ),
    Claim(
        "HP-BLK-UNPLUG",
        S004,
        "热拔磁盘 标准机型",
        "device_del returns, DEVICE_DELETED "
        "follows once the guest lets go; blockdev-del then removes the backend",
    ),
    Claim(
        "HP-NET-STD",
        S004,
        "热插网卡 标准机型",
        "A NIC hot-plugged into a root port appears in the guest with its MAC",
    ),
    Claim(
        "HP-NET-UNPLUG",
        S004,
        "热拔网卡 标准机型",
        "device_del + DEVICE_DELETED, then netdev_del removes the backend",
    ),
    Claim(
        "HP-STD-ADDR0",
        S004,
        "热插磁盘 参数",
        "On standard machines addr must be 0x0: another slot on a root port is refused",
        doc_value=ErrorReply(),
        expect={
            "qemu": D(
                "hw/pci/pci.c in 7.2 has no slot check behind a PCIe downstream port "
                "(seen here: device_add addr=0x1 on a root port returns {} with no "
                "warning); later QEMU first warned 'only allows plugging into slot 0' in "
                "pci_qdev_realize, then refused it in do_pci_register_device"
            ),
            # machine/src/standard_common/mod.rs handle_plug -> devices/src/pci/root_port.rs
            # (devfn = slot * 8 + function: addr 0x1 is devfn 8)
            "stratovirt-2.5": H(
                ErrorReply(
                    "GenericError",
                    "Failed to plug device: HotPlug is not supported for device with devfn 8",
                )
            ),
        },
    ),
    Claim(
        "HP-STD-ROOTPORT",
        S004,
        "注意事项",
        "Hotplug goes only to root ports configured before boot",
        doc_value=ErrorReply(),
        expect={
            "qemu": NA(
                "QEMU also hot-plugs into pcie.0 (ACPI); the StratoVirt restriction does not apply"
            ),
            # machine/src/standard_common/mod.rs: handle_plug on a bus without a hotplug
            # controller (pcie.0 has none)
            "stratovirt-2.5": H(
                ErrorReply(
                    "GenericError",
                    "Failed to plug device: No hot plug controller found for bus pcie.0 when plug",
                )
            ),
        },
    ),
    Claim(
        "HP-MMIO-BLK-MAX",
        S004,
        "热插磁盘 参数",
        "microvm supports at most 6 virtio-blk disks",
        doc_value=SlotLimit(6, ErrorReply()),
        expect={
            "qemu": QEMU_NA_STRATO,
            "stratovirt-2.5": D(
                "machine/src/micro_common/mod.rs: 4 replaceable blk slots since April 2021"
            ),
        },
    ),
    Claim(
        "HP-MMIO-NET-MAX",
        S004,
        "热插网卡 参数",
        "microvm supports at most 2 virtio-net NICs",
        doc_value=SlotLimit(2, ErrorReply()),
        expect={
            "qemu": QEMU_NA_STRATO,
            # machine/src/micro_common/mod.rs via machine/src/error.rs RplDevLmtErr, whose
            # arguments are swapped ("net 2", not "2 net")
            "stratovirt-2.5": H(
                SlotLimit(
                    2,
                    ErrorReply(
                        "GenericError", "A maximum of net 2 replaceable devices are supported."
                    ),
                )
            ),
        },
    ),
    Claim(
        "HP-VFIO",
        S004,
        "热插拔直通设备",
        "A vfio-pci device hot-plugs into a root port",
        expect={
            "qemu": NA("needs a host PCI device bound to vfio-pci; none here"),
            "stratovirt-2.5": NA("needs a host PCI device bound to vfio-pci"),
        },
    ),
    Claim(
        "BALLOON",
        S004,
        "Ballon设备使用",
        "balloon sets the guest size; query-balloon reports actual",
    ),
    # -- limitations (S003 Limitations, S004 约束与限制) ------------------------------------
    Claim(
        "LIM-MIG-BLOCKERS",
        S003,
        "Limitations",
        "vhost-net, vhost-user-net, vfio, balloon "
        "and shared/file-backed memory do not support migration (migrate is refused)",
        doc_value=ErrorReply(),
        expect={
            "qemu": QEMU_NA_STRATO,
            "stratovirt-2.5": D(
                "migration/ and machine/src/lib.rs: no check for these "
                "devices; balloon even registers a MigrationHook"
            ),
        },
    ),
    Claim(
        "LIM-MISMATCH-MEM",
        S003,
        "Limitations",
        "Source and destination -m must match: "
        "a mismatch fails the migration and the source keeps running",
        doc_value=FAILED,
    ),
    Claim(
        "LIM-MISMATCH-SMP",
        S003,
        "Limitations",
        "-smp must match: a mismatch fails the migration",
        doc_value=FAILED,
        expect={
            "qemu": D(
                "seen here with QEMU 7.2 on q35 and virt: -smp 2 -> 1 (same maxcpus) "
                "completes; migration/savevm.c has no vCPU-count check and the missing "
                "vCPU's section is not refused"
            ),
        },
    ),
    Claim(
        "LIM-MISMATCH-MAC",
        S003,
        "Limitations",
        "virtio-net mac must match: a mismatch fails the migration",
        doc_value=FAILED,
        expect={
            "qemu": D(
                "hw/net/virtio-net.c migrates the MAC in its state; no check "
                "against the destination's -device mac"
            ),
            "stratovirt-2.5": D("migration.rs check_vm_config: mac is not checked"),
        },
    ),
]

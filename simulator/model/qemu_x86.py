"""qemu-system-x86_64 7.2 as data: its machine list, the names the simulator models,
and what the firmware leaves in guest memory when no OS boots.

The machine list is what ``qemu-system-x86_64 -machine help`` prints (QEMU 7.2, Debian
1:7.2+dfsg-7+deb12u18; hw/core/machine-qmp-cmds.c / softmmu/vl.c machine_help_func:
``"%-20s %s"`` per machine, "(alias of X)", "(default)", "(deprecated)").

The firmware figures were measured once from real QEMU 7.2 with ``-nodefaults -m 128``
and no boot device (SeaBIOS finds nothing to boot and idles): the migration stream of
that idle guest, cut per RAM block (migration/ram.c RAM_SAVE_FLAG_PAGE vs
RAM_SAVE_FLAG_ZERO), says which pages hold data. ``pc.ram`` is the guest's RAM; the
other blocks (``pc.bios``, ``pc.rom``, ``/rom@etc/acpi/*``) are the extra migratable RAM
``ram.total`` counts beyond ``-m``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from simulator.model.devices import MachineType
from simulator.model.units import PAGE_SIZE

#: ``-machine help``: (name, description) in QEMU's order.
MACHINE_LIST: tuple[tuple[str, str], ...] = (
    ("microvm", "microvm (i386)"),
    ("pc", "Standard PC (i440FX + PIIX, 1996) (alias of pc-i440fx-7.2)"),
    ("pc-i440fx-7.2", "Standard PC (i440FX + PIIX, 1996) (default)"),
    ("pc-i440fx-7.1", "Standard PC (i440FX + PIIX, 1996)"),
    ("pc-i440fx-7.0", "Standard PC (i440FX + PIIX, 1996)"),
    ("pc-i440fx-6.2", "Standard PC (i440FX + PIIX, 1996)"),
    ("pc-i440fx-6.1", "Standard PC (i440FX + PIIX, 1996)"),
    ("pc-i440fx-6.0", "Standard PC (i440FX + PIIX, 1996)"),
    ("pc-i440fx-5.2", "Standard PC (i440FX + PIIX, 1996)"),
    ("pc-i440fx-5.1", "Standard PC (i440FX + PIIX, 1996)"),
    ("pc-i440fx-5.0", "Standard PC (i440FX + PIIX, 1996)"),
    ("pc-i440fx-4.2", "Standard PC (i440FX + PIIX, 1996)"),
    ("pc-i440fx-4.1", "Standard PC (i440FX + PIIX, 1996)"),
    ("pc-i440fx-4.0", "Standard PC (i440FX + PIIX, 1996)"),
    ("pc-i440fx-3.1", "Standard PC (i440FX + PIIX, 1996)"),
    ("pc-i440fx-3.0", "Standard PC (i440FX + PIIX, 1996)"),
    ("pc-i440fx-2.9", "Standard PC (i440FX + PIIX, 1996)"),
    ("pc-i440fx-2.8", "Standard PC (i440FX + PIIX, 1996)"),
    ("pc-i440fx-2.7", "Standard PC (i440FX + PIIX, 1996)"),
    ("pc-i440fx-2.6", "Standard PC (i440FX + PIIX, 1996)"),
    ("pc-i440fx-2.5", "Standard PC (i440FX + PIIX, 1996)"),
    ("pc-i440fx-2.4", "Standard PC (i440FX + PIIX, 1996)"),
    ("pc-i440fx-2.3", "Standard PC (i440FX + PIIX, 1996)"),
    ("pc-i440fx-2.2", "Standard PC (i440FX + PIIX, 1996)"),
    ("pc-i440fx-2.12", "Standard PC (i440FX + PIIX, 1996)"),
    ("pc-i440fx-2.11", "Standard PC (i440FX + PIIX, 1996)"),
    ("pc-i440fx-2.10", "Standard PC (i440FX + PIIX, 1996)"),
    ("pc-i440fx-2.1", "Standard PC (i440FX + PIIX, 1996)"),
    ("pc-i440fx-2.0", "Standard PC (i440FX + PIIX, 1996)"),
    ("pc-i440fx-1.7", "Standard PC (i440FX + PIIX, 1996) (deprecated)"),
    ("pc-i440fx-1.6", "Standard PC (i440FX + PIIX, 1996) (deprecated)"),
    ("pc-i440fx-1.5", "Standard PC (i440FX + PIIX, 1996) (deprecated)"),
    ("pc-i440fx-1.4", "Standard PC (i440FX + PIIX, 1996) (deprecated)"),
    ("q35", "Standard PC (Q35 + ICH9, 2009) (alias of pc-q35-7.2)"),
    ("pc-q35-7.2", "Standard PC (Q35 + ICH9, 2009)"),
    ("pc-q35-7.1", "Standard PC (Q35 + ICH9, 2009)"),
    ("pc-q35-7.0", "Standard PC (Q35 + ICH9, 2009)"),
    ("pc-q35-6.2", "Standard PC (Q35 + ICH9, 2009)"),
    ("pc-q35-6.1", "Standard PC (Q35 + ICH9, 2009)"),
    ("pc-q35-6.0", "Standard PC (Q35 + ICH9, 2009)"),
    ("pc-q35-5.2", "Standard PC (Q35 + ICH9, 2009)"),
    ("pc-q35-5.1", "Standard PC (Q35 + ICH9, 2009)"),
    ("pc-q35-5.0", "Standard PC (Q35 + ICH9, 2009)"),
    ("pc-q35-4.2", "Standard PC (Q35 + ICH9, 2009)"),
    ("pc-q35-4.1", "Standard PC (Q35 + ICH9, 2009)"),
    ("pc-q35-4.0.1", "Standard PC (Q35 + ICH9, 2009)"),
    ("pc-q35-4.0", "Standard PC (Q35 + ICH9, 2009)"),
    ("pc-q35-3.1", "Standard PC (Q35 + ICH9, 2009)"),
    ("pc-q35-3.0", "Standard PC (Q35 + ICH9, 2009)"),
    ("pc-q35-2.9", "Standard PC (Q35 + ICH9, 2009)"),
    ("pc-q35-2.8", "Standard PC (Q35 + ICH9, 2009)"),
    ("pc-q35-2.7", "Standard PC (Q35 + ICH9, 2009)"),
    ("pc-q35-2.6", "Standard PC (Q35 + ICH9, 2009)"),
    ("pc-q35-2.5", "Standard PC (Q35 + ICH9, 2009)"),
    ("pc-q35-2.4", "Standard PC (Q35 + ICH9, 2009)"),
    ("pc-q35-2.12", "Standard PC (Q35 + ICH9, 2009)"),
    ("pc-q35-2.11", "Standard PC (Q35 + ICH9, 2009)"),
    ("pc-q35-2.10", "Standard PC (Q35 + ICH9, 2009)"),
    ("isapc", "ISA-only PC"),
    ("none", "empty machine"),
    ("x-remote", "Experimental remote machine"),
)


def machine_help(machines: tuple[tuple[str, str], ...]) -> str:
    """The text ``-machine help`` prints for a machine list."""
    lines = ["Supported machines are:", *(f"{n:<20} {d}" for n, d in machines)]
    return "\n".join(lines) + "\n"


#: The names that are machine types the simulator models (the 7.2 versions are the
#: same machines as their aliases).
MACHINE_NAMES: Mapping[str, MachineType] = MappingProxyType(
    {
        "pc": MachineType.PC,
        "pc-i440fx-7.2": MachineType.PC,
        "q35": MachineType.Q35,
        "pc-q35-7.2": MachineType.Q35,
        "isapc": MachineType.ISAPC,
        "microvm": MachineType.MICROVM,
    }
)


@dataclass(frozen=True)
class Firmware:
    """A machine's firmware in memory: its ROM blocks and what it writes into RAM."""

    rom: int  # bytes of migratable ROM blocks (ram.total = -m + rom)
    rom_nonzero: int  # bytes of them that hold data (the rest migrates as zero pages)
    ram_nonzero: int  # bytes of guest RAM written when no OS boots


#: SeaBIOS per machine (pages measured as above).
FIRMWARE: Mapping[MachineType, Firmware] = MappingProxyType(
    {
        MachineType.PC: Firmware(532480, 50 * PAGE_SIZE, 61 * PAGE_SIZE),
        MachineType.Q35: Firmware(532480, 51 * PAGE_SIZE, 72 * PAGE_SIZE),
        MachineType.ISAPC: Firmware(262144, 18 * PAGE_SIZE, 20 * PAGE_SIZE),
    }
)

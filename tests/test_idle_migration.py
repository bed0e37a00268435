"""An idle guest migrates as zero pages, between simulator processes as between real QEMUs.

A bare launch (QEMU's avocado migration test: default machine, 128 MiB, nothing to boot)
leaves nearly all RAM untouched; QEMU 7.2 sends each such page as a 9-byte zero page
(migration/ram.c save_zero_page), so the whole migration is under a megabyte.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from harness.bare import idle_migration
from simulator.cmdline import BOOTED_RESIDENT, parse
from simulator.model import MachineType, VMSpec, World
from simulator.model.units import MiB

SIMULATOR = [sys.executable, "-m", "simulator", "--profile", "qemu-7.2"]
QEMU = shutil.which("qemu-system-x86_64")
#: 128 MiB of RAM plus SeaBIOS's ROM blocks on pc (pc.bios, pc.rom, ACPI tables).
PC_RAM_TOTAL = 134750208


def test_idle_guest_migrates_as_zero_pages(tmp_path: Path) -> None:
    """Two bare simulator processes migrate an idle pc guest.

    1. The migration completes; the destination runs.
    2. ram.total is 128 MiB plus pc's ROM blocks, as real QEMU 7.2 reports it.
    3. Untouched RAM went as zero pages: nearly every page is ``duplicate``, a few
       hundred at most are ``normal`` (what SeaBIOS wrote), under 1 MB on the wire.
    4. Where real QEMU 7.2 is installed, the same launch there sends within a factor of
       1.5 as many bytes and normal pages (a booted-OS guest would send 80 times more).
    """
    (tmp_path / "sim").mkdir()
    sim = idle_migration(SIMULATOR, tmp_path / "sim")
    assert sim.query["status"] == "completed" and sim.destination_status == "running"
    ram = sim.query["ram"]
    assert ram["total"] == PC_RAM_TOTAL
    assert ram["duplicate"] >= 32_700 and ram["normal"] <= 300
    assert sim.transferred < 1_000_000
    if QEMU is not None:
        (tmp_path / "real").mkdir()
        real = idle_migration([QEMU], tmp_path / "real")
        assert real.query["ram"]["total"] == PC_RAM_TOTAL
        assert 1 / 1.5 <= sim.transferred / real.transferred <= 1.5
        assert 1 / 1.5 <= ram["normal"] / real.query["ram"]["normal"] <= 1.5


@pytest.mark.parametrize(
    ("extra", "resident"),
    [
        ([], 61 * 4096),  # SeaBIOS on pc, nothing to boot
        (["-M", "q35"], 72 * 4096),
        (["-kernel", "vmlinuz"], BOOTED_RESIDENT),  # a booted OS
        (["-drive", "id=d0,file=disk.img"], BOOTED_RESIDENT),
        (["--resident", "8M"], 8 * MiB),
    ],
)
def test_guest_memory_starts_as_a_real_guests(extra: list[str], resident: int) -> None:
    """What guest RAM holds data at start.

    1. Nothing to boot: only what the machine's firmware wrote (profile data).
    2. A kernel or a disk to boot from: a booted OS's footprint.
    3. --resident overrides both.
    """
    cfg = parse([*extra, "-qmp", "unix:/tmp/hvlab-never-bound.sock,server=on,wait=off"])
    assert cfg.resident == resident


def test_completed_is_shown_when_its_time_comes() -> None:
    """The model sends an idle guest within one rate-limit window, ahead of the clock.

    1. query-migrate says "completed" only once the clock has reached the migration's
       end: until then it is "active" (or "setup"), never "completed".
    2. When it first says "completed", its total-time is no later than the clock.
    """
    w = World()
    spec = VMSpec(machine=MachineType.PC, memory=128 * MiB, resident=61 * 4096)
    src = w.create_vm("src", spec, "qemu-7.2")
    w.create_vm("dst", spec, "qemu-7.2", incoming="unix:/tmp/hvlab-idle.sock")
    assert src.execute("migrate", {"uri": "unix:/tmp/hvlab-idle.sock"})[0] == {}
    start = w.clock.now
    statuses = []
    while not statuses or statuses[-1][1]["status"] != "completed":
        w.advance(0.001)
        reply = src.execute("query-migrate")[0]
        statuses.append((w.clock.now - start, reply))
        assert len(statuses) < 1000
    assert {r["status"] for _, r in statuses[:-1]} <= {"setup", "active"}
    elapsed, done = statuses[-1]
    assert len(statuses) > 5
    assert done["total-time"] <= round(elapsed * 1000) + 1

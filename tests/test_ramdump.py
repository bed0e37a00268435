"""harness/ramdump.py: the page-by-page comparison that says whether guest memory
arrived intact (suites/test_features.py compares a migration's two sides with it)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from harness import migration, ramdump
from harness.errors import HarnessError
from harness.fixtures import VMFactory, destination
from harness.guest import guest_image
from harness.migration import Transport
from harness.ramdump import PAGE, RamDiff, differing_pages
from harness.spec import Arch, MachineType, Topology, VMSpec
from harness.targets.qemu import QemuTarget


def _dump(path: Path, pages: int, changes: dict[int, bytes]) -> Path:
    data = bytearray(b"\x5a" * (pages * PAGE))
    for page, patch in changes.items():
        at = page * PAGE + PAGE - len(patch)  # at the page's end: a whole-page compare
        data[at : at + len(patch)] = patch
    path.write_bytes(bytes(data))
    return path


def test_equal_dumps_have_no_differing_page(tmp_path: Path) -> None:
    a = _dump(tmp_path / "a", 16390, {})
    b = _dump(tmp_path / "b", 16390, {})
    assert differing_pages(a, b) == []


def test_every_differing_page_is_found_across_chunks(tmp_path: Path) -> None:
    # 16390 pages span two 64 MiB reads; one changed byte per page, the last one in
    # the last page
    a = _dump(tmp_path / "a", 16390, {})
    changed = {0: b"\x01", 16383: b"\x02", 16384: b"\x03", 16389: b"\x04"}
    b = _dump(tmp_path / "b", 16390, changed)
    assert differing_pages(a, b) == sorted(changed)


def test_dumps_of_different_sizes_are_refused(tmp_path: Path) -> None:
    a = _dump(tmp_path / "a", 2, {})
    b = _dump(tmp_path / "b", 3, {})
    with pytest.raises(HarnessError, match="differ in size"):
        differing_pages(a, b)


def test_a_diff_names_its_first_pages() -> None:
    diff = RamDiff(65536, tuple(0x4000_0000 + n * PAGE for n in range(6)))
    assert not diff.intact
    assert diff.describe() == (
        "6 of 65536 pages differ (0x40000000, 0x40001000, 0x40002000, 0x40003000, ...)"
    )
    assert RamDiff(10, ()).describe() == "all 10 pages equal"


@pytest.mark.parametrize("arch", [Arch.X86_64, Arch.AARCH64], ids=lambda a: a.value)
def test_a_guest_stopped_through_its_migration_arrives_with_every_page_equal(
    tmp_path: Path, arch: Arch
) -> None:
    """The control for the features suite's memory check, on real QEMU 7.2: a guest
    stopped before its migration writes nothing while it is sent, so no write can be
    lost, and every page of the destination (started with -S) equals the source's,
    ROM and firmware ranges included: the comparison has no false alarm to give.

    1. The migration completes; the destination stays paused.
    2. Both sides' whole RAM was compared (65536 pages of 256 MiB) and every page is equal.
    3. The dumps are gone afterwards.
    """
    factory = VMFactory(QemuTarget(arch), tmp_path / "vms", images=guest_image)
    try:
        spec = VMSpec(machine=MachineType.standard(arch), topology=Topology(cpus=1), memory_mib=256)
        src = factory.launch(spec, "src")
        src.pause()
        dst = destination(factory, dataclasses.replace(spec, start_paused=True), Transport.TCP)
        result = migration.migrate(src, dst, Transport.TCP)
        assert (result.status, result.dst_runstate) == ("completed", "paused"), result.final
        diff = ramdump.compare(src, dst, tmp_path / "ram")
        assert diff.pages == 65536
        assert diff.intact, diff.describe()
        assert list((tmp_path / "ram").iterdir()) == []
    finally:
        factory.close()

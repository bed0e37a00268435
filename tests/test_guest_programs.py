"""hvlab-stress, the guest's dirtying workload: built for both arches, and what it does.

The behaviour checks run the x86_64 build on this host (the same source the guest gets).
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from harness.guest_programs import build, compiler
from harness.spec import Arch

ELF_MACHINE = {Arch.X86_64: 62, Arch.AARCH64: 183}  # e_machine: EM_X86_64, EM_AARCH64


def _have(arch: Arch) -> bool:
    return shutil.which(compiler(arch)) is not None


@pytest.mark.parametrize("arch", list(Arch), ids=lambda a: a.value)
def test_builds_static_for_each_arch(arch: Arch, tmp_path: Path) -> None:
    """1. Debian's compiler for the arch builds hvlab-stress.
    2. The result is an ELF executable of that machine with no program interpreter
       (static: it runs in the busybox initramfs).
    """
    if not _have(arch):
        pytest.skip(f"{compiler(arch)} not installed (make setup installs it)")
    binary = build(arch, tmp_path)["hvlab-stress"]
    data = binary.read_bytes()
    assert data[:4] == b"\x7fELF" and int.from_bytes(data[18:20], "little") == ELF_MACHINE[arch]
    assert b"/lib/ld-linux" not in data and b"/lib64/ld-linux" not in data


@pytest.fixture(scope="module")
def stress(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not _have(Arch.X86_64) or Arch.parse(__import__("platform").machine()) is not Arch.X86_64:
        pytest.skip("runs the x86_64 build on an x86_64 host")
    return build(Arch.X86_64, tmp_path_factory.mktemp("stress"))["hvlab-stress"]


def _lines(path: Path, prefix: str, count: int = 1, timeout: float = 10.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = path.read_text() if path.exists() else ""
        found = [ln for ln in text.splitlines() if ln.startswith(prefix)]
        if len(found) >= count:
            return found
        time.sleep(0.05)  # polling a file the child writes; bounded by the deadline
    raise AssertionError(f"no {prefix!r} line in {path}")


def test_rate_heartbeat_and_verify(stress: Path, tmp_path: Path) -> None:
    """1. It fills the working set and says so.
    2. Its achieved rate is the requested one (within 15%).
    3. Heartbeats arrive about every -b ms, numbered from 0.
    4. SIGUSR1 verifies every page: ok, then bad after one byte of the working set
       outside the dirtied word is changed (through /proc/PID/mem).
    """
    log = tmp_path / "stress.log"
    proc = subprocess.Popen([str(stress), "-w", "8", "-r", "40", "-b", "50", "-o", str(log)])
    try:
        assert _lines(log, "stress filled") == ["stress filled 8 MiB"]
        rate = float(_lines(log, "stress rate")[0].split()[2])
        assert 34 <= rate <= 46, rate
        beats = [int(ln.split()[1]) for ln in _lines(log, "hb ")]
        assert beats[0] == 0 and beats == list(range(len(beats)))
        assert 12 <= len(beats) <= 30, len(beats)  # ~1.1 s at 50 ms
        proc.send_signal(signal.SIGUSR1)
        assert _lines(log, "stress verify")[0] == "stress verify ok 2048"
        maps = Path(f"/proc/{proc.pid}/maps").read_text()
        start = next(
            int(m.group(1), 16)
            for m in re.finditer(r"^([0-9a-f]+)-([0-9a-f]+) rw-p 00000000 00:00 0", maps, re.M)
            if int(m.group(2), 16) - int(m.group(1), 16) >= 8 << 20
        )
        with open(f"/proc/{proc.pid}/mem", "r+b") as mem:
            mem.seek(start + 5 * 4096 + 100)
            mem.write(b"\0")
        proc.send_signal(signal.SIGUSR1)
        assert _lines(log, "stress verify", 2)[1] == "stress verify bad page 5"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_random_pattern_and_usage(stress: Path, tmp_path: Path) -> None:
    """1. -p random runs and reports its rate; -t ends it by itself.
    2. Bad arguments exit 2 with a usage line.
    """
    log = tmp_path / "r.log"
    done = subprocess.run(
        [str(stress), "-w", "4", "-r", "20", "-p", "random", "-t", "2", "-o", str(log)],
        timeout=30,
        check=False,
    )
    assert done.returncode == 0
    assert _lines(log, "stress rate") and _lines(log, "stress done")
    bad = subprocess.run([str(stress), "-w", "x"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "usage: hvlab-stress" in bad.stderr

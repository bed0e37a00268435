"""QEMU 7.2's own avocado migration tests, unchanged, against real QEMU and the simulator.

The tests (``tests/avocado/migration.py``), their base class (``avocado_qemu``) and the
launcher they use (``qemu.machine.QEMUMachine``, with QEMU 7.2's ``qemu.qmp``) come from
Debian's qemu source package, fetched into the cache by ``setup/qemu-source.sh``. Only
the framework is stood in for (``tests/upstream/avocado``); ``qemu_bin`` is either the
real ``qemu-system-x86_64`` or an executable that starts the simulator with
``--profile qemu-7.2`` and passes QEMUMachine's command line through untouched.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from harness.guest import cache_root
from harness.leaks import OWNER_ENV, check_no_leaks, kill_tagged, owner_tag
from harness.waits import scaled

ROOT = Path(__file__).resolve().parent.parent
RUNNER = ROOT / "tests" / "upstream" / "run_avocado.py"
SOURCE = cache_root() / "qemu-source" / "qemu"
MIGRATION = SOURCE / "tests" / "avocado" / "migration.py"
QEMU = shutil.which("qemu-system-x86_64")
TESTS = (
    "test_migration_with_tcp_localhost",
    "test_migration_with_unix",
    "test_migration_with_exec",
)
#: Wall seconds one upstream test may take (its own waits are 10 s each).
RUN_S = 90.0

pytestmark = pytest.mark.skipif(
    not MIGRATION.is_file(),
    reason=f"QEMU's source is not in {SOURCE}: make setup (setup/qemu-source.sh) fetches it",
)


def simulator_binary(folder: Path, profile: str = "qemu-7.2") -> Path:
    """An executable that is the simulator with ``--profile`` and the caller's argv.

    The simulator runs in this process (no second interpreter): the inherited monitor
    socket of ``-chardev socket,id=mon,fd=N`` stays where QEMUMachine put it.
    """
    path = folder / f"sim-{profile}"
    path.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from simulator.__main__ import main\n"
        f"sys.exit(main(['--profile', {profile!r}, *sys.argv[1:]]))\n"
    )
    path.chmod(0o700)
    return path


def run_upstream(binary: Path | str, test: str, workdir: Path) -> dict[str, str]:
    """Run one upstream test method in a process group of its own; its outcome."""
    owner = owner_tag(f"avocado-{uuid.uuid4().hex[:12]}")
    env = dict(
        os.environ,
        HVLAB_AVOCADO_PARAMS=json.dumps({"qemu_bin": str(binary)}),
        PYTHONPATH=str(ROOT),
        TMPDIR=str(workdir),
        **{OWNER_ENV: owner},
    )
    argv = [sys.executable, str(RUNNER), "--qemu-source", str(SOURCE), str(MIGRATION)]
    proc = subprocess.Popen(
        [*argv, f"Migration.{test}"],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=scaled(RUN_S))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        kill_tagged(owner)
        pytest.fail(f"{test} did not end within {scaled(RUN_S):.0f}s:\n{err[-4000:]}")
    check_no_leaks(owner)  # the VMs (and nc) ended with the test
    lines = out.strip().splitlines()
    assert lines, f"the runner printed no outcome (exit {proc.returncode}):\n{err[-4000:]}"
    outcomes = json.loads(lines[-1])
    assert len(outcomes) == 1, outcomes
    result: dict[str, str] = outcomes[0]
    result["stderr"] = err
    return result


@pytest.mark.parametrize("test", TESTS)
@pytest.mark.parametrize("launched", ["qemu-7.2", "sim:qemu-7.2"])
def test_qemu_avocado_migration(launched: str, test: str, tmp_path: Path) -> None:
    """QEMU's ``Migration`` test, launched by QEMUMachine, on real QEMU or the simulator.

    1. The upstream test ran (not cancelled: ``nc`` is installed for the exec one).
    2. It passed: both sides report ``completed``, the destination ``running`` and the
       source ``postmigrate`` (the upstream assertions, unchanged), and both VMs shut
       down cleanly through QMP ``quit``.
    """
    if launched == "qemu-7.2":
        if QEMU is None:
            pytest.skip("qemu-system-x86_64 is not installed")
        binary: Path | str = QEMU
    else:
        binary = simulator_binary(tmp_path)
    result = run_upstream(binary, test, tmp_path)
    assert result["outcome"] != "cancel", result["detail"]
    assert result["outcome"] == "pass", f"{result['detail']}\n{result['stderr'][-4000:]}"

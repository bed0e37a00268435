"""Wrong and hostile input: one clear line, exit 2, nothing created, nothing moved."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.guest import GuestImage
from harness.report.results import TestResult, read_results, write_junit
from harness.spec import Arch, VMSpec
from harness.targets.base import RunPaths
from harness.targets.qemu import QemuTarget

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    """A report folder with one earlier run that ``latest`` points at."""
    folder = tmp_path / "reports"
    (folder / "earlier").mkdir(parents=True)
    (folder / "earlier" / "run.json").write_text(json.dumps({"run_id": "earlier"}))
    (folder / "latest").symlink_to("earlier")
    return folder


def hvlab(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def _inventory(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hosts.ini"
    path.write_text(text)
    return path


CASES = [
    ("hostile ansible_host", "[qemu]\nh1 ansible_host=x?ssh_config=/tmp/evil\n", [],
     "is not a plain host name or IP address"),
    ("option as address", "[qemu]\nh1 ansible_host=-oProxyCommand=id\n", [],
     "is not a plain host name or IP address"),
    ("non-ASCII port", "[qemu]\nh1 ansible_port=\u0662\u0662\n", [], "is not a port"),
    ("bad section", "[qemu\nlocalhost\n", [], "bad section header"),
    ("unknown target", "[simulator]\nlocalhost ansible_connection=local\n",
     ["--target", "bogus"], "unknown target(s) bogus"),
    ("nan timeout factor", "[simulator]\nlocalhost ansible_connection=local\n",
     ["--timeout-factor", "nan"], "must be a number above 0"),
    ("zero timeout factor", "[simulator]\nlocalhost ansible_connection=local\n",
     ["--timeout-factor", "0"], "must be a number above 0"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "extra", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_run_input_is_one_line_and_creates_nothing(
    tmp_path: Path, reports: Path, text: str, extra: list[str], words: str
) -> None:
    """``hvlab run`` with a bad inventory, target or factor.

    1. Exit code 2, and stderr is one line naming what is wrong (no traceback).
    2. No run folder was created and ``latest`` still points at the earlier run.
    """
    before = sorted(p.name for p in reports.iterdir())
    done = hvlab("run", "--hosts", str(_inventory(tmp_path, text)),
                 "--report-dir", str(reports), *extra)  # fmt: skip
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and words in lines[0], done.stderr
    assert sorted(p.name for p in reports.iterdir()) == before
    assert os.readlink(reports / "latest") == "earlier"


def test_bad_timeout_factor_in_the_environment(tmp_path: Path, reports: Path) -> None:
    """HVLAB_TIMEOUT_FACTOR=nan is refused like --timeout-factor nan.

    1. Exit 2 with one line naming the variable; nothing created.
    """
    inv = _inventory(tmp_path, "[simulator]\nlocalhost ansible_connection=local\n")
    done = hvlab("run", "--hosts", str(inv), "--report-dir", str(reports),
                 env={"HVLAB_TIMEOUT_FACTOR": "nan"})  # fmt: skip
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "HVLAB_TIMEOUT_FACTOR" in lines[0]
    assert sorted(p.name for p in reports.iterdir()) == ["earlier", "latest"]


def test_report_dir_that_is_a_file_or_read_only(tmp_path: Path) -> None:
    """A report folder that cannot be written.

    1. A file given as the folder: exit 2, one line, the file untouched.
    2. A read-only file system (a read-only tmpfs here): exit 2, one line, nothing written.
    """
    inv = _inventory(tmp_path, "[simulator]\nlocalhost ansible_connection=local\n")
    afile = tmp_path / "afile"
    afile.write_text("keep")
    done = hvlab("run", "--hosts", str(inv), "--report-dir", str(afile))
    assert done.returncode == 2 and "is not a folder" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and afile.read_text() == "keep"
    if os.geteuid() != 0:
        pytest.skip("mounting a read-only tmpfs needs root")
    ro = tmp_path / "ro"
    ro.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(ro)], check=True)
    try:
        done = hvlab("run", "--hosts", str(inv), "--report-dir", str(ro / "reports"))
        assert done.returncode == 2 and "no permission to write" in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and list(ro.iterdir()) == []
    finally:
        subprocess.run(["umount", str(ro)], check=True)


def test_fuzz_with_no_examples() -> None:
    """``hvlab fuzz --examples 0`` is refused with one line, exit 2."""
    done = hvlab("fuzz", "--examples", "0")
    assert done.returncode == 2 and "must be at least 1" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("script", "args", "says"),
    [
        ("bench_boot.py", ["0"], "must be at least 1"),
        ("bench_idle_migration.py", ["three"], "is not a whole number"),
        ("bench_lab.py", ["-1"], "must be at least 1"),
        ("bench_soak.py", ["--minutes", "0"], "must be > 0"),
        ("fidelity.py", ["--runs", "0"], "must be at least 1"),
        ("fidelity.py", ["--configs", "no-such"], "no-such"),
        ("fidelity.py", ["--out", "FILE"], "is not a folder"),
        ("fidelity.py", ["--rescore", "EMPTY"], "no real/ reports"),
    ],
)
def test_bad_benchmark_input(tmp_path: Path, script: str, args: list[str], says: str) -> None:
    """A benchmark given a bad count, configuration or folder: one line, exit 2, no QEMU.

    1. The line names what is wrong; nothing is written (the file and folder are as
       they were, and no reports/fidelity run is made).
    """
    (tmp_path / "FILE").write_text("keep")
    (tmp_path / "EMPTY").mkdir()
    argv = [str(tmp_path / a) if a in ("FILE", "EMPTY") else a for a in args]
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *argv],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert says in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert (tmp_path / "FILE").read_text() == "keep" and not any((tmp_path / "EMPTY").iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["EMPTY", "FILE"]


def test_report_of_garbage_is_refused(tmp_path: Path) -> None:
    """``hvlab report`` on files that are not hvlab's.

    1. A results.jsonl of garbage: exit 2, one line saying it is not hvlab results.
    2. A line with wrong types among good ones is named with its line number and left
       out; the report is built from the others (exit 0).
    """
    run = tmp_path / "run1"
    run.mkdir()
    (run / "results.jsonl").write_text("\x00\x01 not json\n{{{\n")
    done = hvlab("report", str(run))
    assert done.returncode == 2 and "not hvlab results" in done.stderr, done.stderr
    good = TestResult("t::a", "a", "sim:qemu-7.2", "passed", 0.1).to_json()
    bad = {**good, "nodeid": "t::b", "duration": "fast"}
    lines = [json.dumps(good), json.dumps(bad), json.dumps({**good, "nodeid": "t::c"})]
    (run / "results.jsonl").write_text("\n".join(lines) + "\n")
    done = hvlab("report", str(run))
    assert done.returncode == 0, done.stderr
    assert "results.jsonl:2: duration is str" in done.stderr
    assert [r.nodeid for r in read_results(run)] == ["t::a", "t::c"]


def test_junit_survives_control_characters(tmp_path: Path) -> None:
    """A test message with control characters still gives a junit.xml that parses.

    1. The file parses; 2. the message keeps its text with the characters made visible.
    """
    r = TestResult("t::x", "x", "qemu-x86_64", "failed", 1.0, message="boom\x1b[31m\x00end")
    path = tmp_path / "junit.xml"
    write_junit([r], path, "run")
    failure = ET.parse(path).getroot().find(".//failure")
    assert failure is not None and failure.text == "boom\\x1b[31m\\x00end"


def test_comma_in_a_path_stays_one_qemu_option_value() -> None:
    """A report folder with a comma (the serial log lives there) cannot cut QEMU's
    option strings: the comma is doubled, as QEMU's option parser reads it.

    1. The chardev's logfile value holds the doubled comma; the option has exactly the
       parts it should.
    """
    paths = RunPaths(Path("/tmp/hvlab-x"), Path("/reports/a,b/artifacts"))
    image = GuestImage(Arch.X86_64, Path("/k"), Path("/i"), "t")
    argv = QemuTarget(Arch.X86_64).argv(VMSpec(), paths, image)
    chardev = argv[argv.index("-chardev") + 1]
    assert chardev.endswith("logfile=/reports/a,,b/artifacts/serial.log")
    parts = chardev.replace(",,", "\0").split(",")
    assert [p.split("=")[0] for p in parts] == ["socket", "id", "path", "server", "wait", "logfile"]


def test_prune_keeps_the_newest_runs(tmp_path: Path) -> None:
    """``hvlab report --prune --keep N`` removes old run folders only.

    1. Of five runs, the newest two stay, and the one ``latest`` points at even if old.
    2. Non-run folders are untouched; --keep 0 is refused (exit 2).
    """
    import time

    reports = tmp_path / "reports"
    for i in range(5):
        run = reports / f"run{i}"
        run.mkdir(parents=True)
        (run / "run.json").write_text("{}")
        os.utime(run, (time.time() - 100 + i, time.time() - 100 + i))
    (reports / "notes").mkdir()
    (reports / "latest").symlink_to("run0")
    done = hvlab("report", "--prune", "--keep", "2", "--report-dir", str(reports))
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in reports.iterdir()) == ["latest", "notes", "run0", "run3", "run4"]
    assert hvlab("report", "--prune", "--keep", "0", "--report-dir", str(reports)).returncode == 2


def test_big_artifacts_of_passing_tests_go() -> None:
    """Retention keeps logs and drops big files and captures.

    1. A 2 MiB file and a pcap go; a log stays; the bytes freed are counted.
    """
    import tempfile

    from harness.retention import prune_artifacts

    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        (folder / "vm0").mkdir()
        (folder / "vm0" / "serial.log").write_text("log")
        (folder / "snapshot").mkdir()
        (folder / "snapshot" / "vmstate").write_bytes(os.urandom(2 << 20))
        (folder / "net").mkdir()
        (folder / "net" / "wire.pcap").write_bytes(b"x" * 100)
        freed = prune_artifacts(folder)
        left = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
        assert left == ["vm0/serial.log"] and freed >= 2 << 20

"""`hvlab run` end to end on a tiny suite without VMs, a run killed with SIGKILL, and the
flags suite's libvirt-model target through the plugin into the report."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
#: tests that start hvlab sessions of their own run on one xdist worker (make test:
#: --dist loadgroup): every session reaps dead runs at its start, so two at once would
#: take each other's evidence
pytestmark = pytest.mark.xdist_group("hvlab-sessions")

SUITE = '''
import os
import signal

import pytest

from harness.errors import LaunchError


@pytest.mark.catalog("T-ONE")
def test_passes():
    """It passes.

    1. True is true.
    """


@pytest.mark.catalog("T-TWO")
def test_fails():
    """It fails with a message that needs escaping.

    1. <b>bold</b> is not markup.
    """
    assert "<b>bold</b>" == "plain"


def test_skips():
    pytest.skip("not on this host")


def test_killed():
    if os.environ.get("KILL_RUN"):
        os.kill(os.getpid(), signal.SIGKILL)


def test_never_reached():
    pass


@pytest.mark.catalog("T-THREE")
def test_launch_fails():
    """A hypervisor that dies at launch, as harness.machine reports it."""
    try:
        raise ConnectionRefusedError("QMP socket refused")
    except OSError:
        raise LaunchError(
            "vm0: qemu-system-x86_64 exited with 1 while launching",
            {
                "argv": ["qemu-system-x86_64", "-machine", "q35", "-name", "vm 0"],
                "exit_code": 1,
                "stderr": "qemu-system-x86_64: -device <bogus>: not found",
                "console_tail": "SeaBIOS (version 1.16.2)\\nBooting from ROM...",
                "sent": {"execute": "qmp_capabilities"},
            },
        )
'''


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    """A suites folder (no VMs, so no targets) and an empty inventory beside it."""
    folder = tmp_path / "suites"
    folder.mkdir()
    (folder / "test_tiny.py").write_text(textwrap.dedent(SUITE))
    (tmp_path / "hosts.ini").write_text("[qemu]\nlocalhost ansible_connection=local\n")
    return folder


def _hvlab(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_run_writes_report_and_prints_its_path(suite: Path, tmp_path: Path) -> None:
    """`hvlab run` leaves a complete report and says where.

    1. The exit code is pytest's: 1, because a test failed.
    2. The last line of output is the path of the run's index.html, which exists.
    3. run.json records the hvlab git sha; the run is marked finished.
    4. index.html shows the skip reason and catalog ids; the failure's page is escaped.
    5. The page of the test that raised a LaunchError shows its context: the error type,
       the command line (shell-quoted), exit code, stderr, console tail and QMP sent,
       all escaped; results.json keeps the context; a plain failure has none.
    """
    reports = tmp_path / "reports"
    proc = _hvlab(
        "run",
        "--suites",
        str(suite),
        "--hosts",
        str(tmp_path / "hosts.ini"),
        "--report-dir",
        str(reports),
        "-k",
        "not killed",
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("hvlab: report ") and last.endswith("/index.html"), last
    index = Path(last.removeprefix("hvlab: report "))
    assert index.is_file() and index.parent.parent == reports

    meta = json.loads((index.parent / "run.json").read_text())
    assert len(meta["hvlab"]["sha"]) == 40 and "finished" in meta

    html = index.read_text()
    assert "not on this host" in html
    assert ">T-ONE<" in html and ">T-TWO<" in html
    page = next((index.parent / "tests").glob("*test_fails*.html")).read_text()
    assert "&lt;b&gt;bold&lt;/b&gt;" in page and "<b>bold</b>" not in page
    assert "Failure context" not in page

    page = next((index.parent / "tests").glob("*test_launch_fails*.html")).read_text()
    context = page[page.index("<h2>Failure context</h2>") :].split("</dl>")[0]
    for text in (
        "LaunchError",
        "qemu-system-x86_64 -machine q35 -name &#39;vm 0&#39;",
        'Exit code</dt><dd class="ctx-exit_code"><code>1</code>',
        "-device &lt;bogus&gt;: not found",
        "Booting from ROM...",
        "&#34;execute&#34;: &#34;qmp_capabilities&#34;",
    ):
        assert text in context, text
    tests = json.loads((index.parent / "results.json").read_text())["tests"]
    launch = next(t for t in tests if t["name"] == "test_launch_fails")
    assert launch["context"]["exit_code"] == 1 and launch["context"]["error"] == "LaunchError"


def test_killed_run_leaves_a_partial_report(suite: Path, tmp_path: Path) -> None:
    """A run SIGKILLed mid-way is rendered by `hvlab report`.

    1. The pytest process dies by SIGKILL inside the fourth test.
    2. results.jsonl holds the three tests that finished; no index.html was written.
    3. `hvlab report latest` exits 0 and says the run is partial.
    4. index.html says "Partial run" and has pages for the three finished tests.
    """
    reports = tmp_path / "reports"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(suite),
            "-p",
            "no:pytest11.testinfra",
            "-p",
            "no:cacheprovider",
            "--report-dir",
            str(reports),
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "KILL_RUN": "1", "HVLAB_RUN_ID": "killed-run"},
    )
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    run = reports / "killed-run"
    assert len((run / "results.jsonl").read_text().splitlines()) == 3
    assert not (run / "index.html").exists()

    rebuilt = _hvlab("report", "latest", "--report-dir", str(reports))
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "from 3 results (partial run" in rebuilt.stdout

    html = (run / "index.html").read_text()
    assert "Partial run." in html
    assert len(list((run / "tests").glob("*.html"))) == 3


def _matrix_row(html: str, claim_id: str) -> str:
    matrix = html[html.index("<h2>Behaviour catalog</h2>") :].split("</table>")[0]
    return matrix[matrix.index(f">{claim_id}<") :].split("</tr>")[0]


def test_flags_suite_reports_its_target(tmp_path: Path) -> None:
    """The flags suite runs on the libvirt-model target and the report counts it.

    1. `--target libvirt-model` runs the five flag rules there; libvirt-9.0 is deselected.
    2. The plugin wrote catalog.json from the suites' catalog before the tests ran:
       FLAG-* hold on libvirt-model, the hypervisor claims are n/a there.
    3. The summary has a libvirt-model row with 5 passed and no "-" row.
    4. Every FLAG-* matrix cell shows its test's outcome (passed, linked); LC-STOP is n/a.
    """
    reports = tmp_path / "reports"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "suites/test_flags.py",
            "-p",
            "no:pytest11.testinfra",
            "--target",
            "libvirt-model",
            "--report-dir",
            str(reports),
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=REPO,
        env={**os.environ, "HVLAB_RUN_ID": "flags-run"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.rstrip().splitlines()[-1].startswith("5 passed in")
    run = reports / "flags-run"

    catalog = json.loads((run / "catalog.json").read_text())
    flags = [cid for cid in catalog if cid.startswith("FLAG-")]
    assert len(flags) == 5
    assert all(catalog[cid]["expectations"]["libvirt-model"] == "holds" for cid in flags)
    assert catalog["LC-STOP"]["expectations"]["libvirt-model"] == "n/a"

    html = (run / "index.html").read_text()
    summary = html[html.index("<h2>Summary per target</h2>") :].split("</table>")[0]
    rows = re.findall(r"<tr><td>([^<]+)</td>(.*?)</tr>", summary)
    assert [target for target, _ in rows] == ["libvirt-model"]
    assert re.findall(r">(\d+)<", rows[0][1]) == ["5", "0", "0", "0", "0", "5"]

    for cid in flags:
        row = _matrix_row(html, cid)
        cell = r'<td class="cell"><a href="tests/[^"]+"[^>]*><span class="badge o-passed">passed<'
        assert re.search(cell, row), cid
    assert ">n/a<" in _matrix_row(html, "LC-STOP")


def test_a_libvirt_target_alone_collects_every_suite() -> None:
    """`--target libvirt-9.0` (or libvirt-model) over all suites: the hypervisor suites
    have no target of theirs, including those with a placement axis (target x host
    pair), and are left out; nothing fails to collect (it did: "in parametrize the number
    of names (2) must be equal to the number of values (1)").
    """
    for target in ("libvirt-model", "libvirt-9.0"):
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "suites", "-p", "no:pytest11.testinfra",
             "--target", target, "--collect-only", "-q"],
            capture_output=True, text=True, timeout=300, check=False, cwd=REPO,
        )  # fmt: skip
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out[-3000:]
        assert "error" not in out.lower() and "deselected" in out, out[-3000:]


STOPPABLE = """
import time

from harness.waits import wait_for


def test_first():
    pass


def test_waits():
    wait_for(lambda: None, 600, "nothing (this test waits to be stopped)")


def test_never_reached():
    pass
"""


@pytest.mark.parametrize("signals", [["SIGTERM"], ["SIGINT", "SIGINT", "SIGINT"]])
def test_a_stopped_run_says_so(tmp_path: Path, signals: list[str]) -> None:
    """A run stopped by SIGTERM (CI cancel) or Ctrl-C (pressed three times).

    1. The exit code is 130; no traceback is printed however often Ctrl-C comes.
    2. run.json and results.json say the run was interrupted, by which signal, while
       which test was running; junit.xml has an error saying so (the run is not green).
    3. The test that ran before the stop has its result; the one after never ran.
    """
    import signal as sig_module
    import time
    import xml.etree.ElementTree as ET

    folder = tmp_path / "suites"
    folder.mkdir()
    (folder / "test_stop.py").write_text(textwrap.dedent(STOPPABLE))
    (tmp_path / "hosts.ini").write_text("[qemu]\nlocalhost ansible_connection=local\n")
    reports = tmp_path / "reports"
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", "--suites", str(folder),
         "--hosts", str(tmp_path / "hosts.ini"), "--report-dir", str(reports)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    jsonl = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and jsonl is None:
        jsonl = next(reports.glob("*/results.jsonl"), None) if reports.exists() else None
        time.sleep(0.1)
    assert jsonl is not None
    while time.monotonic() < deadline and "test_first" not in jsonl.read_text():
        time.sleep(0.1)
    time.sleep(0.5)  # test_waits is running now
    for name in signals:
        proc.send_signal(getattr(sig_module, name))
        time.sleep(0.2)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out + err
    assert "Traceback" not in out + err
    run = jsonl.parent
    meta = json.loads((run / "run.json").read_text())
    assert meta["interrupted"]["by"] == signals[0]
    assert meta["interrupted"]["running"].endswith("test_stop.py::test_waits")
    assert json.loads((run / "results.json").read_text())["run"]["interrupted"]["by"]
    error = ET.parse(run / "junit.xml").getroot().find(".//testcase[@name='run']/error")
    assert error is not None and "interrupted by" in str(error.get("message"))
    names = [json.loads(line)["name"] for line in jsonl.read_text().splitlines()]
    assert "test_first" in names and "test_never_reached" not in names


def test_session_without_report_dir_leaves_no_scratch(tmp_path: Path) -> None:
    """A pytest session without --report-dir keeps VM logs in a private folder.

    1. The session made that folder (its VMs logged there).
    2. Having passed, it removed the folder at its end.
    """
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    env.pop("HVLAB_RUN", None)
    argv = [sys.executable, "-m", "pytest", "suites/test_lifecycle.py", "-p",
            "no:cacheprovider", "-p", "no:pytest11.testinfra", "--target", "sim:qemu-7.2",
            "-k", "test_stop_then_cont", "-q", "-s"]  # fmt: skip
    proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "1 passed" in proc.stdout
    assert not list(tmp_path.glob("hvlab-artifacts-*")), list(tmp_path.iterdir())

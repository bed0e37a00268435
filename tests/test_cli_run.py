"""`hvlab run` end to end on a tiny suite without VMs, and a run killed with SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SUITE = '''
import os
import signal

import pytest


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

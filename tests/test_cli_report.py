"""`hvlab report` and `hvlab bench` as CI and a user call them: exit codes and output."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from report_demo import make_demo_run

from harness.cli import main
from harness.report import results as report_results


def _rewrite(run: Path, changes: dict[str, str]) -> None:
    """Change outcomes in results.jsonl, keyed by a substring of the node id."""
    lines = []
    for line in (run / "results.jsonl").read_text().splitlines():
        data = json.loads(line)
        for key, outcome in changes.items():
            if key in data["nodeid"]:
                data["outcome"] = outcome
        lines.append(json.dumps(data))
    (run / "results.jsonl").write_text("\n".join(lines) + "\n")


@pytest.fixture
def two_runs(tmp_path: Path) -> tuple[Path, Path]:
    """The demo run twice: A as made, B a copy (to be edited by the test)."""
    a = make_demo_run(tmp_path / "a")
    b = tmp_path / "b" / a.name
    shutil.copytree(a, b)
    return a, b


def test_report_rebuilds_html_from_jsonl(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`hvlab report RUN` rebuilds everything from results.jsonl alone.

    1. Exit code 0; results.json, junit.xml and index.html are written.
    2. It prints the summary per target and the path of index.html.
    3. A run id is found under --report-dir; so is `latest`.
    4. results.json and junit.xml count the diverged test as such and as a pass.
    """
    run = make_demo_run(tmp_path)
    assert main(["report", str(run)]) == 0
    for name in ("results.json", "junit.xml", "index.html"):
        assert (run / name).is_file(), name
    out = capsys.readouterr().out
    assert "qemu-aarch64" in out and "failed 1" in out
    assert f"report: {run.resolve()}/index.html" in out

    (tmp_path / "latest").symlink_to(run.name)
    assert main(["report", run.name, "--report-dir", str(tmp_path)]) == 0
    assert main(["report", "latest", "--report-dir", str(tmp_path)]) == 0

    doc = json.loads((run / "results.json").read_text())
    assert doc["summary"]["qemu-x86_64"]["diverged"] == 1
    junit = (run / "junit.xml").read_text()
    assert '<property name="outcome" value="diverged" />' in junit
    x86 = junit[junit.index('name="qemu-x86_64"') :].split("</testsuite>")[0]
    assert 'failures="0"' in x86 and 'errors="1"' in x86


def test_report_compare_lists_changes(
    two_runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """`hvlab report A B` lists what changed and exits 1 only on a regression.

    1. Identical runs: exit 0, "0 changed".
    2. A fix (failed -> passed) and a new skip: exit 0, both listed, no REGRESSION.
    3. A passed -> failed: exit 1, listed first and marked REGRESSION.
    4. A test missing from B (a partial run) is listed as only in A, not a regression.
    """
    a, b = two_runs
    assert main(["report", str(a), str(b)]) == 0
    assert "0 changed (0 regressions)" in capsys.readouterr().out

    _rewrite(b, {"test_cancel_status[qemu-aarch64]": "passed", "test_stop[qemu-x86": "skipped"})
    assert main(["report", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "failed -> passed   fixed" in out and "passed -> skipped  changed" in out
    assert "REGRESSION" not in out

    _rewrite(b, {"test_auto_converge[qemu-x86_64]": "failed"})
    lines = (b / "results.jsonl").read_text().splitlines()
    (b / "results.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    assert main(["report", str(a), str(b)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert "REGRESSION" in out[1] and "test_auto_converge[qemu-x86_64]" in out[1]
    assert any(line.startswith(f"  only in {a.name}: ") for line in out)
    assert "3 changed (1 regressions)" in out[-1]


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["report", "/nonexistent/run"], "/nonexistent/run: no such run folder"),
        (["report", "no-such-id", "--report-dir", "/tmp"], "nor a run id in /tmp"),
        (["report", "/tmp"], "not a run folder"),
        (["report", "/tmp", "/tmp", "/tmp"], "one run (rebuild it) or two"),
        (["report"], "report needs a RUN"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["run", "--timeout-factor", "fast"], "--timeout-factor 'fast' is not a number"),
        (["run", "--hosts", "/nonexistent.ini"], "inventory /nonexistent.ini does not exist"),
        (["bench", "nosuch"], "no benchmark nosuch"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad input gets one line on stderr and exit code 2.

    1. The exit code is 2 (argparse's errors included).
    2. stderr is exactly one line, naming the problem; no traceback.
    3. Nothing is printed on stdout.
    """
    with pytest.raises(SystemExit) as exc_info:
        sys.exit(main(argv))
    assert exc_info.value.code == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], captured.err
    assert "Traceback" not in captured.err
    assert captured.out == ""


def test_help_reads_well(capsys: pytest.CaptureFixture[str]) -> None:
    """--help names every command, examples and the exit codes.

    1. `hvlab --help` exits 0 and lists run, hosts, report, bench, images, leaks.
    2. It documents the exit codes.
    3. `hvlab report --help` explains the one-run and two-run forms.
    """
    with pytest.raises(SystemExit) as exc_info:
        main(["--help"])
    assert exc_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("run", "hosts", "report", "bench", "images", "leaks"):
        assert f"\n    {command} " in out, command
    assert "exit codes: 0 ok; 1 tests failed" in out
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps to the terminal width
    assert "With one RUN" in out and "With RUN_A RUN_B" in out and "exit code 1 if any" in out


def test_bench_runs_scripts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`hvlab bench` runs each bench/*.py and passes their output through.

    1. `--list` names the benchmarks.
    2. A named benchmark runs alone; its output is printed; exit 0.
    3. Running all, one failing benchmark makes the exit code 1 and is named.
    """
    (tmp_path / "ratio.py").write_text("print('fidelity ratio 1.07')\n")
    (tmp_path / "broken.py").write_text("import sys\nprint('half')\nsys.exit(3)\n")
    assert main(["bench", "--bench-dir", str(tmp_path), "--list"]) == 0
    assert capsys.readouterr().out.split() == ["broken", "ratio"]

    assert main(["bench", "--bench-dir", str(tmp_path), "ratio"]) == 0
    out = capsys.readouterr().out
    assert "[1/1] ratio.py" in out and "ratio.py: done" in out

    assert main(["bench", "--bench-dir", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "broken.py: exit code 3" in captured.out
    assert "1 benchmark(s) failed: broken.py" in captured.err


def test_bench_passes_arguments_after_dashes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`hvlab bench NAME -- ARGS` hands ARGS to that one benchmark (fidelity's --runs, --out).

    1. The script sees exactly the arguments after `--` (it exits 0 only then).
    2. Arguments after `--` with no benchmark or two named: one line, exit 2, nothing runs.
    """
    (tmp_path / "args.py").write_text(
        "import sys\nsys.exit(0 if sys.argv[1:] == ['--runs', '1', '--out', 'x y'] else 4)\n"
    )
    (tmp_path / "other.py").write_text("raise SystemExit(5)\n")
    argv = ["bench", "--bench-dir", str(tmp_path)]
    assert main([*argv, "args", "--", "--runs", "1", "--out", "x y"]) == 0
    assert main([*argv, "args", "--", "--runs", "2"]) == 1
    capsys.readouterr()
    for names in ([], ["args", "other"]):
        assert main([*argv, *names, "--", "--runs", "1"]) == 2
        captured = capsys.readouterr()
        assert "name exactly one" in captured.err and "[1/" not in captured.out


def test_from_json_tolerates_new_fields() -> None:
    """Results written by a newer hvlab still load.

    1. Unknown keys are ignored, known ones kept.
    """
    r = report_results.TestResult.from_json(
        {
            "nodeid": "a::b",
            "name": "b",
            "target": "t",
            "outcome": "diverged",
            "duration": 1,
            "future": 1,
        }
    )
    assert (r.nodeid, r.outcome) == ("a::b", "diverged")


def test_fuzz_and_sim_are_wired(capsys: pytest.CaptureFixture[str]) -> None:
    """`hvlab fuzz` and `hvlab sim` reach the simulator's entry points.

    1. `hvlab fuzz --examples 5 --seed 1` exits 0 and reports the seed it used.
    2. `hvlab sim` hands its command line to the simulator untouched: a bad machine type
       is the simulator's one-line error and its exit code 1.
    """
    assert main(["fuzz", "--examples", "5", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "seed 1" in out and "fuzz ok: 5 examples" in out

    assert main(["sim", "-machine", "bogus"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bogus" in err[0]

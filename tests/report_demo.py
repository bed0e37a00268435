"""A realistic run folder without VMs, for the report's self-tests and for previewing.

``python tests/report_demo.py DIR`` writes DIR/<run-id>/ with what a real run leaves:
run.json with host facts, results.jsonl with every outcome (passed, failed, error,
diverged, skipped; the error with a HarnessError's context), catalog.json, and per-VM
artifacts (console with terminal escapes, a QMP transcript with an error reply and a
torn last line, a migration time series). Then it renders the HTML and prints the path
of index.html.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from harness.report.catalog import Entry, write_catalog
from harness.report.results import TestResult

RUN_ID = "20250101-120000-4242"
TARGETS = ["qemu-x86_64", "qemu-aarch64", "stratovirt-x86_64"]
SKIP = "stratovirt-x86_64: stratovirt is not installed on this host"
NASTY = "<script>alert('x')</script> & \"quotes\""

CATALOG = {
    "LC-STOP": Entry(
        "LC-STOP",
        "004 管理虚拟机",
        "stop",
        "stop pauses the VM and emits STOP",
        {"qemu": "holds", "stratovirt": "holds"},
        "seed 004 §3",
    ),
    "MIG-CONVERGE": Entry(
        "MIG-CONVERGE",
        "006 live migration",
        "auto-converge",
        "auto-converge throttles vCPUs until the migration converges",
        {"qemu": "holds", "stratovirt": "n/a"},
        "",
    ),
    "MIG-CANCEL-STATUS": Entry(
        "MIG-CANCEL-STATUS",
        "006 live migration",
        "cancel",
        "after migrate_cancel query-migrate reports 'cancelled'",
        {"qemu": "holds", "stratovirt": "diverges"},
        "StratoVirt reports 'failed'",
    ),
    "SNAP-RESTORE": Entry(
        "SNAP-RESTORE",
        "007 snapshot",
        "restore",
        "a restored VM resumes where it stopped",
        {"qemu": "holds", "stratovirt": "holds"},
        "",
    ),
}

LAUNCH_CONTEXT: dict[str, Any] = {
    "error": "LaunchError",
    "argv": ["qemu-system-x86_64", "-machine", "q35", "-name", "vm 0", "-incoming", NASTY],
    "exit_code": 1,
    "stderr": "qemu-system-x86_64: -incoming: can't open snapshot\n" + NASTY,
    "sent": {"execute": "cont"},
}
"""A LaunchError's context as the plugin records it (HarnessError.context plus its type)."""

DOC = """{title}

    1. {one}
    2. {two}"""


def _artifacts_rel(nodeid: str) -> str:
    import re

    return "artifacts/" + re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid)[-150:]


def _qmp_lines(t0: float, with_error: bool) -> list[str]:
    msgs: list[tuple[str, Any]] = [
        ("recv", {"QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 22}}}}),
        ("send", {"execute": "qmp_capabilities"}),
        ("recv", {"return": {}}),
        ("send", {"execute": "stop", "id": "__qmp#00000"}),
        ("recv", {"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 5}}),
        ("recv", {"return": {}, "id": "__qmp#00000"}),
        ("send", {"execute": "query-status", "id": "__qmp#00001"}),
        ("recv", {"return": {"status": "paused", "running": False}, "id": "__qmp#00001"}),
    ]
    if with_error:
        msgs.append(("send", {"execute": "migrate_cancel", "id": "__qmp#00002"}))
        msgs.append(
            ("recv", {"error": {"class": "GenericError", "desc": NASTY}, "id": "__qmp#00002"})
        )
    lines = [json.dumps({"t": t0 + 0.013 * i, "dir": d, "msg": m}) for i, (d, m) in enumerate(msgs)]
    lines.append('{"t": 12.5, "dir": "recv", "msg": {"ret')  # torn by a kill
    return lines


def _migration(seed: int) -> dict[str, Any]:
    samples = []
    remaining = 256 * 1024 * 1024
    transferred = 0
    for i in range(40):
        t = i * 0.25
        rate = 25_000 - 450 * i + 300 * ((i * seed) % 3)
        throttle = 0 if i < 12 else min(99, 20 + 10 * ((i - 12) // 4))
        sent = 36 * 1024 * 1024 * 0.25
        transferred += int(sent)
        remaining = max(0, int(remaining - sent + rate * 4096 * 0.25 * (1 - throttle / 100)))
        status = "active" if i < 38 else "device" if i == 38 else "completed"
        samples.append(
            {
                "t": t,
                "remaining": remaining if status != "completed" else 0,
                "transferred": transferred,
                "dirty-pages-rate": max(rate, 0),
                "cpu-throttle-percentage": throttle,
                "status": status,
            }
        )
    return {"samples": samples, "status_history": ["setup", "active", "device", "completed"]}


def _vm(run_dir: Path, rel: str, vm: str, *, error: bool, migration: int | None) -> None:
    d = run_dir / rel / vm
    d.mkdir(parents=True, exist_ok=True)
    console = (
        "\x1b[0;32mhvlab-guest ready\x1b[0m: 6.1.0-28-amd64 x86_64\r\n"
        "hvlab# echo alive\r\nalive\r\nhvlab# \x07" + "".join(f"line {n}\n" for n in range(30))
    )
    (d / "serial.log").write_text(console, encoding="utf-8")
    (d / "stdout.log").write_text("", encoding="utf-8")
    (d / "stderr.log").write_text(
        "qemu-system-x86_64: warning: host doesn't support requested feature\n" if error else ""
    )
    (d / "qmp.jsonl").write_text("\n".join(_qmp_lines(1000.0, error)), encoding="utf-8")
    if migration is not None:
        (d / "migration.json").write_text(json.dumps(_migration(migration)), encoding="utf-8")


def make_demo_run(root: Path, *, finished: bool = True) -> Path:
    """Write the demo run folder under ``root`` and return it (HTML not rendered)."""
    run_dir = root / RUN_ID
    run_dir.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {
        "run_id": RUN_ID,
        "started": 1735732800.0,
        "hvlab": {
            "path": "/work/main",
            "sha": "0123456789abcdef0123456789abcdef01234567",
            "dirty": False,
        },
        "hosts": {
            "localhost": {
                "host": "localhost",
                "arch": "x86_64",
                "kernel": "6.1.0-28-amd64",
                "qemu": {"x86_64": "7.2.22", "aarch64": "7.2.22"},
                "stratovirt": None,
                "libvirt": "9.0.0",
                "kvm_device": True,
                "kvm_works": False,
                "kvm_detail": "/dev/kvm opens but the guest printed nothing in 15s",
                "hugepages_total": 0,
                "tools": {"ip": True, "tc": True, "bridge": False},
            }
        },
        "targets": TARGETS,
    }
    if finished:
        meta.update(finished=1735732890.0, duration=90.0)
    (run_dir / "run.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    write_catalog(run_dir, CATALOG)
    results: list[TestResult] = []

    def add(name: str, target: str, outcome: str, ids: list[str], **kw: Any) -> TestResult:
        module = kw.pop("module", "suites/test_migration.py")
        nodeid = f"{module}::{name}[{target}]"
        r = TestResult(
            nodeid=nodeid,
            name=f"{name}[{target}]",
            target=target,
            outcome=outcome,
            duration=kw.pop("duration", 3.25),
            message=kw.pop("message", ""),
            catalog=ids,
            doc=DOC.format(title=name.replace("_", " "), one="the first thing", two=NASTY),
            artifacts=_artifacts_rel(nodeid),
            finished=1735732810.0 + len(results),
            context=kw.pop("context", {}),
        )
        results.append(r)
        return r

    for target in TARGETS:
        if target.startswith("stratovirt"):
            add(
                "test_stop",
                target,
                "skipped",
                ["LC-STOP"],
                module="suites/test_lifecycle.py",
                message=SKIP,
                duration=0.0,
            )
            add(
                "test_cancel_status",
                target,
                "skipped",
                ["MIG-CANCEL-STATUS"],
                message=SKIP,
                duration=0.0,
            )
            continue
        r = add("test_stop", target, "passed", ["LC-STOP"], module="suites/test_lifecycle.py")
        _vm(run_dir, r.artifacts, "vm0", error=False, migration=None)
        r = add("test_auto_converge", target, "passed", ["MIG-CONVERGE"], duration=11.5)
        _vm(run_dir, r.artifacts, "src", error=False, migration=3 if "x86" in target else 5)
        _vm(run_dir, r.artifacts, "dst", error=False, migration=None)
        failing = target == "qemu-aarch64"
        r = add(
            "test_cancel_status",
            target,
            "failed" if failing else "passed",
            ["MIG-CANCEL-STATUS"],
            message=f"AssertionError: assert 'failed' == 'cancelled'\n{NASTY}" if failing else "",
        )
        _vm(run_dir, r.artifacts, "src", error=failing, migration=None)
    r = add("test_cancel_status_doc", "qemu-x86_64", "diverged", ["MIG-CANCEL-STATUS"])
    r = add(
        "test_restore",
        "qemu-x86_64",
        "error",
        ["SNAP-RESTORE", "SNAP-UNLISTED"],
        module="suites/test_snapshot.py",
        message="LaunchError: qemu-system-x86_64 exited with 1 during setup",
        context=LAUNCH_CONTEXT,
    )
    with (run_dir / "results.jsonl").open("w", encoding="utf-8") as fh:
        for r in results:
            fh.write(json.dumps(r.to_json()) + "\n")
        if not finished:
            # The test running when the run was SIGKILLed: artifacts, a torn result line.
            (run_dir / "artifacts" / "suites_test_hotplug.py_test_plug_qemu-x86_64_").mkdir(
                parents=True
            )
    if not finished:
        with (run_dir / "results.jsonl").open("ab") as raw:  # torn inside a UTF-8 character
            raw.write(b'{"nodeid": "suites/test_hotplug.py::test_plug[qemu-x86_64]", "doc": "\xc3')
    return run_dir


def main(argv: list[str]) -> int:
    from harness.report.writer import rebuild

    if len(argv) != 1:
        print("usage: python tests/report_demo.py DIR", file=sys.stderr)
        return 2
    _, index = rebuild(make_demo_run(Path(argv[0])))
    print(index)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

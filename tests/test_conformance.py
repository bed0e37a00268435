"""The lockstep QMP fuzzer (harness/conformance): comparison, invariants, the run, the CLI.

The short lockstep run on real QEMU x86_64 against sim:qemu-7.2 is
``test_real_qemu_and_simulator_agree`` (make test runs it; HVLAB_LOCKSTEP_EXAMPLES sets
its size). The others drive two simulator targets and finish in seconds.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from harness.cli import main as hvlab
from harness.conformance import invariants
from harness.conformance.compare import compare, normalise, normalise_events
from harness.conformance.fuzz import FuzzConfig, run
from harness.conformance.lockstep import Divergence
from harness.conformance.reproducer import replay_file
from harness.conformance.steps import Action, Observation, Step
from simulator.model.migration.status import QEMU_TRANSITIONS


def test_masked_values_compare_by_type_and_everything_else_exactly() -> None:
    """Verified:
    1. Volatile query-migrate members (times, RAM counters) differ without a difference.
    2. A member one side lacks is a difference, named by its path.
    3. An error's class and desc are compared.
    4. Events compare name and data in order; MIGRATION_PASS runs merge, their counts
       are masked.
    5. Backend-specific strings (ports, files) are replaced by their placeholders.
    """
    ref = Observation({"return": {"status": "active", "total-time": 5, "ram": {"total": 9}}})
    cand = Observation({"return": {"status": "active", "total-time": 7, "ram": {"total": 1}}})
    a, b = normalise(ref, "query-migrate", {}), normalise(cand, "query-migrate", {})
    assert compare(1, "query-migrate", a, b) == []
    cand.reply["return"]["blocked"] = False
    diffs = compare(1, "query-migrate", a, normalise(cand, "query-migrate", {}))
    assert [(d.where, d.path) for d in diffs] == [("reply", "return.blocked")]
    err = {"error": {"class": "DeviceNotFound", "desc": "Device 'x' not found"}}
    other = {"error": {"class": "GenericError", "desc": "Device x not found"}}
    diffs = compare(2, "device_del", Observation(err), Observation(other))
    assert {d.path for d in diffs} == {"error.class", "error.desc"}
    passes = [{"event": "MIGRATION_PASS", "data": {"pass": n}} for n in (1, 2, 3)]
    assert normalise_events([*passes, {"event": "STOP"}]) == [
        {"event": "MIGRATION_PASS", "data": {"pass": "<number>"}},
        {"event": "STOP", "data": {}},
    ]
    stop_first = Observation({}, {"src": [{"event": "STOP"}, {"event": "RESUME"}]})
    resume_first = Observation({}, {"src": [{"event": "RESUME"}, {"event": "STOP"}]})
    assert compare(3, "cont", stop_first, resume_first)
    names = {"127.0.0.1:4444": "{destination}"}
    moved = normalise(Observation({"error": {"desc": "to 127.0.0.1:4444"}}), "migrate", names)
    assert moved.reply == {"error": {"desc": "to {destination}"}}


def test_invariant_tables_come_from_qemu() -> None:
    """Verified:
    1. Every source transition the simulator's QEMU profile makes is one QEMU 7.2 makes.
    2. A status path skipping "setup" breaks the source invariant; a normal one does not.
    3. A destination never goes back from completed; between two steps a runstate
       reaches only what runstate.c allows through the states a poll can miss (a
       running VM never becomes "inmigrate" again).
    """
    for a, b in QEMU_TRANSITIONS:
        assert (a.value, b.value) in invariants.SOURCE_EDGES, (a, b)
    ok = ["setup", "active", "completed", "setup", "active", "cancelling", "cancelled"]
    assert invariants.bad_edges(ok, invariants.SOURCE_EDGES) == []
    assert invariants.bad_edges(["active"], invariants.SOURCE_EDGES) == [("none", "active")]
    dst = ["active", "completed", "active"]
    assert invariants.bad_edges(dst, invariants.DESTINATION_EDGES) == [("completed", "active")]
    passing = invariants.PASSING_RUNSTATES
    assert invariants.reachable(invariants.RUNSTATE_EDGES, "running", "postmigrate", passing)
    assert invariants.reachable(invariants.RUNSTATE_EDGES, "paused", "paused", passing)
    assert not invariants.reachable(invariants.RUNSTATE_EDGES, "save-vm", "restore-vm", passing)
    assert not invariants.reachable(invariants.RUNSTATE_EDGES, "running", "inmigrate", passing)
    assert not invariants.reachable(invariants.RUNSTATE_EDGES, "save-vm", "paused", passing)


def test_steps_round_trip_as_json() -> None:
    """Verified:
    1. A step written as JSON reads back equal, for each action.
    """
    for step in (
        Step(Action.QMP, "src", "device_add", {"driver": "virtio-blk-pci", "id": "d"}),
        Step(Action.RAW, "dst", message={"execute": 5}),
        Step(Action.MIGRATE),
        Step(Action.RESTORE),
    ):
        assert Step.from_json(json.loads(json.dumps(step.to_json()))) == step


def test_a_difference_is_shrunk_and_written_as_a_replayable_test(tmp_path: Path) -> None:
    """Two simulator targets that behave differently (QEMU's and StratoVirt's profiles).

    1. The run exits 1 and counts differences by command.
    2. Each difference is shrunk to one step (both refuse or answer one command
       differently from the first step on) and written as JSON plus a pytest file.
    3. Replaying a written reproducer on the same targets raises the Divergence again.
    4. The run folder has the summary and the report page.
    """
    cfg = FuzzConfig("sim:qemu-7.2", "sim:stratovirt-2.5", 6, 3, 4, tmp_path, every_kind=False)
    code, folder = run(cfg, out=lambda line: None)
    assert code == 1
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["differences_by_command"]
    reproducers = summary["reproducers"]
    assert reproducers and all(len(r["steps"]) == 1 for r in reproducers)
    first = folder / reproducers[0]["json"]
    assert (folder / reproducers[0]["test"]).read_text().count("replay_file") == 2
    with pytest.raises(Divergence):
        replay_file(first, tmp_path / "replay")
    page = (folder / "index.html").read_text()
    assert "Reproducer" in page and reproducers[0]["label"] in page


def test_a_survey_journals_every_differing_step(tmp_path: Path) -> None:
    """The same two differing simulator targets, surveyed.

    1. The run goes on past the first difference (no shrinking) and exits 1.
    2. differences.jsonl holds one line per differing step, as many as the summary
       counts, each with its command, the example's steps so far and the differences.
    """
    cfg = FuzzConfig("sim:qemu-7.2", "sim:stratovirt-2.5", 2, 3, 4, tmp_path, survey=True)
    code, folder = run(cfg, out=lambda line: None)
    assert code == 1
    summary = json.loads((folder / "summary.json").read_text())
    lines = [json.loads(x) for x in (folder / "differences.jsonl").read_text().splitlines()]
    assert len(lines) == sum(summary["differences_by_command"].values()) > 1
    assert all(x["label"] and x["steps"] and x["lines"] for x in lines)
    assert {x["label"] for x in lines} == set(summary["differences_by_command"])


def test_hvlab_fuzz_qmp_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``hvlab fuzz qmp`` on one simulator target against itself.

    1. Exit code 0: a target never differs from itself.
    2. It prints progress on stderr and the summary (steps run, per backend speed, the
       run folder) on stdout.
    3. The run folder has summary.json, summary.txt and index.html, and no reproducer.
    """
    code = hvlab(
        [
            "fuzz", "qmp", "--target", "sim:qemu-7.2", "--against", "sim:qemu-7.2",
            "--examples", "3", "--steps", "4", "--seed", "5", "--report-dir", str(tmp_path),
        ]
    )  # fmt: skip
    captured = capsys.readouterr()
    out, err = captured.out, captured.err
    assert code == 0, out + err
    assert "steps/s" in out and "no differences" in out and "run folder" in out
    assert "fuzzing QMP" in err and "[1/3+]" in err and "fuzzing QMP" not in out
    (folder,) = tmp_path.glob("fuzz-qmp-*")
    assert {"summary.json", "summary.txt", "index.html"} <= {p.name for p in folder.iterdir()}
    assert not (folder / "reproducers").exists()


def test_hvlab_fuzz_without_kind_is_still_libvirt() -> None:
    """Verified:
    1. ``hvlab fuzz --examples N --seed S --target both`` parses to the libvirt fuzzer.
    2. ``hvlab fuzz qmp ...`` parses to the lockstep fuzzer with its own --target.
    3. An unknown lockstep target is one line and exit code 2.
    """
    from harness.cli import _cmd_fuzz, build_parser
    from harness.conformance.cli import run as run_qmp

    args = build_parser().parse_args(["fuzz", "--examples", "3", "--seed", "1", "--target", "both"])
    assert args.func is _cmd_fuzz and (args.examples, args.seed, args.target) == (3, 1, "both")
    args = build_parser().parse_args(["fuzz", "qmp", "--target", "qemu-aarch64", "--seed", "2"])
    assert args.func is run_qmp and (args.qmp_target, args.qmp_seed) == ("qemu-aarch64", 2)
    assert hvlab(["fuzz", "qmp", "--target", "nosuch", "--examples", "1"]) == 2


@pytest.mark.skipif(
    shutil.which("qemu-system-x86_64") is None, reason="qemu-system-x86_64 is not installed"
)
def test_real_qemu_and_simulator_agree(tmp_path: Path) -> None:
    """A short lockstep run: real QEMU 7.2 x86_64 (TCG) against sim:qemu-7.2.

    1. HVLAB_LOCKSTEP_EXAMPLES (default 24) examples of up to 8 steps, seed 2026, show
       no difference in replies, errors, events or states, and break no invariant.
    """
    examples = int(os.environ.get("HVLAB_LOCKSTEP_EXAMPLES", "24"))
    cfg = FuzzConfig("qemu-x86_64", "sim:qemu-7.2", examples, 2026, 8, tmp_path, every_kind=False)
    code, folder = run(cfg, out=lambda line: None)
    summary = (folder / "summary.txt").read_text()
    assert code == 0, summary


CASES = sorted((Path(__file__).parent / "conformance_cases").glob("*.json"))


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_recorded_case_agrees_on_real_qemu_and_the_simulator(case: Path, tmp_path: Path) -> None:
    """A difference found once (by hvlab fuzz qmp or by hand), kept as a lockstep replay
    on real QEMU and the simulator (the case's ``why`` names the QEMU source deciding it).

    Verified: every step's reply, error, events and states agree (replay raises
    Divergence otherwise), on the case's machine.
    """
    data = json.loads(case.read_text())
    assert data["why"] and data["steps"]
    replay_file(case, tmp_path / "replay")

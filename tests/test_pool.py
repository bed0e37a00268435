"""The shared pool for real: labgrid's coordinator and one exporter per namespace host."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.inventory import parse_inventory
from harness.lab.netlab import NetLab
from harness.lab.pool import Pool, place_commands, place_name, write_exports
from harness.leaks import OWNER_ENV, kill_tagged, tagged_processes
from harness.runner import private_dir
from harness.waits import wait_for

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
#: tests that start hvlab sessions of their own run on one xdist worker (make test:
#: --dist loadgroup): every session reaps dead runs at its start, so two at once would
#: take each other's evidence
pytestmark = [
    pytest.mark.xdist_group("hvlab-sessions"),
    pytest.mark.skipif(
        os.geteuid() != 0 or not (BIN / "labgrid-coordinator").exists(),
        reason="the pool test needs root (namespace lab) and labgrid (make setup installs it)",
    ),
]


@dataclass
class Lab:
    netlab: NetLab
    coordinator: str
    inventory: Path
    folder: Path


def _spawn(argv: list[str], cwd: Path, log: Path, owner: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONUNBUFFERED="1", no_proxy="*", **{OWNER_ENV: owner})
    return subprocess.Popen(
        argv, cwd=cwd, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env,
        start_new_session=True,
    )  # fmt: skip


@pytest.fixture(scope="module")
def pool_lab() -> Iterator[Lab]:
    """Two namespace hosts, a coordinator on loopback, an exporter per host, the places."""
    netlab = NetLab(("labA", "labB")).up()
    folder = private_dir("hvlab-pool-")
    owner = f"{netlab.owner}-pool"
    try:
        log = folder / "coordinator.log"
        _spawn([str(BIN / "labgrid-coordinator"), "-l", "127.0.0.1:0"], folder, log, owner)
        found = wait_for(
            lambda: re.search(r"listening on (127\.0\.0\.1:\d+)", log.read_text()),
            30,
            "the coordinator to listen",
        )
        coordinator = found.group(1)
        inventory = folder / "hosts.ini"
        inventory.write_text(netlab.inventory(groups=("simulator",)))
        hosts = parse_inventory(inventory.read_text())
        write_exports(hosts, folder / "export")
        for host in hosts:
            name = place_name(host)
            _spawn(
                [str(BIN / "labgrid-exporter"), "-c", coordinator, "--name", name,
                 str(folder / "export" / f"{host.name}.yaml")],
                folder, folder / f"exporter-{name}.log", owner,
            )  # fmt: skip
        setup = Pool(coordinator, "setup", hosts)
        wait_for(
            lambda: all(
                f"{place_name(h)}/{place_name(h)}/NetworkService"
                in setup.client("resources").stdout
                for h in hosts
            ),
            60,
            "both exporters to publish",
        )
        for words in place_commands(hosts, {}):
            setup.client(*words)
        yield Lab(netlab, coordinator, inventory, folder)
    finally:
        kill_tagged(owner)
        netlab.down()
        shutil.rmtree(folder, ignore_errors=True)


def _run(lab: Lab, name: str) -> subprocess.Popen[bytes]:
    """``hvlab run`` on the pool: one cross-host migration on the simulator."""
    argv = [
        sys.executable, "-m", "harness.cli", "run", "--coordinator", lab.coordinator,
        "--hosts", str(lab.inventory), "--report-dir", str(lab.folder / "reports"),
        "--target", "sim:qemu-7.2", "-k", "test_live_migration and labA and tcp",
    ]  # fmt: skip
    log = (lab.folder / f"{name}.log").open("wb")
    return subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


def _run_json(lab: Lab, log: str) -> dict[str, object]:
    text = (lab.folder / log).read_text()
    index = re.search(r"hvlab: report (\S+)/index\.html", text)
    assert index, text[-2000:]
    meta: dict[str, object] = json.loads((Path(index.group(1)) / "run.json").read_text())
    return meta


def test_two_runs_on_one_pair_take_turns(pool_lab: Lab) -> None:
    """Two ``hvlab run`` processes that need the same pair never use it at once.

    1. Both runs pass their cross-host migration (labA -> labB).
    2. Each recorded the place it held and its hosts in run.json, and the hosts per test.
    3. Their holding intervals do not overlap; the later one waited for the earlier.
    4. Afterwards the coordinator shows the pair free.
    """
    first = _run(pool_lab, "run1")
    time.sleep(1.0)  # the second reserves while the first holds (or is about to)
    second = _run(pool_lab, "run2")
    assert first.wait(600) == 0, (pool_lab.folder / "run1.log").read_text()[-3000:]
    assert second.wait(600) == 0, (pool_lab.folder / "run2.log").read_text()[-3000:]
    leases = [_run_json(pool_lab, log)["pool"] for log in ("run1.log", "run2.log")]
    for lease in leases:
        assert isinstance(lease, dict)
        assert lease["place"] == "pair-laba-labb" and lease["hosts"] == ["labA", "labB"]
    a, b = sorted(leases, key=lambda lease: float(lease["acquired_at"]))
    assert float(a["released_at"]) <= float(b["acquired_at"]), (a, b)
    assert float(b["waited_s"]) > 0
    results = [
        json.loads(line)
        for p in (pool_lab.folder / "reports").glob("*/results.jsonl")
        for line in p.read_text().splitlines()
    ]
    ran = [r for r in results if r["outcome"] == "passed"]
    assert ran and all(r["hosts"] == ["labA", "labB"] for r in ran)
    who = Pool(pool_lab.coordinator, "check", []).client("who").stdout
    assert "pair-laba-labb" not in who


def test_a_killed_run_is_recovered_by_the_next(pool_lab: Lab) -> None:
    """A run killed with SIGKILL keeps its place on the coordinator (labgrid ties nothing
    to the client process); the next run on this machine releases it and goes on.

    1. The first run holds the pair, then is SIGKILLed.
    2. The coordinator still shows the pair held by the dead run.
    3. The next run says it released the dead run's place, then passes.
    4. Nothing the dead run started is left on the lab hosts (its ssh channels closed
       with it, and the hosts' agents killed what they ran).
    """
    victim = _run(pool_lab, "victim")
    state_dir = Path(os.environ.get("HVLAB_CACHE", Path.home() / ".cache" / "hvlab")) / "pool"

    def holding() -> bool:
        return any(json.loads(p.read_text()).get("place") for p in state_dir.glob("hvlab-*.json"))

    wait_for(holding, 120, "the first run to hold the pair")
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    who = Pool(pool_lab.coordinator, "check", []).client("who").stdout
    assert "pair-laba-labb" in who
    nxt = _run(pool_lab, "next")
    assert nxt.wait(600) == 0, (pool_lab.folder / "next.log").read_text()[-3000:]
    text = (pool_lab.folder / "next.log").read_text()
    assert "released pair-laba-labb (held by dead run" in text, text[-2000:]
    wait_for(
        lambda: not [p for p in tagged_processes(None) if "hvlab-simulator.pyz" in p.cmdline],
        60,
        "the dead run's VMs on the lab hosts to be gone",
    )

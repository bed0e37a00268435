"""Host constants: JSON in and out, and an input of the process path (--host FILE)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from harness import migration
from harness.fixtures import VMFactory
from harness.migration import Transport, incoming_uri
from harness.spec import VMSpec
from harness.targets.sim import SimTarget
from simulator.cmdline import CmdlineError, parse
from simulator.model.host import Arch, Host, load_host

BASE = ["-machine", "q35", "-m", "256", "-qmp", "unix:/tmp/x.sock,server,nowait"]


def test_host_json_round_trip_and_refusals(tmp_path: Path) -> None:
    """1. A host written as JSON loads back equal.
    2. An unknown constant or a negative cost is refused with the file named.
    """
    host = dataclasses.replace(Host(), arch=Arch.AARCH64, first_touch_s=3e-6, resume_s=0.02)
    path = tmp_path / "host.json"
    path.write_text(json.dumps(host.to_json()))
    assert load_host(path) == host
    path.write_text(json.dumps({**host.to_json(), "warp": 9}))
    with pytest.raises(ValueError, match=r"host.json: unknown host constant\(s\): warp"):
        load_host(path)
    path.write_text(json.dumps({**host.to_json(), "resume_s": -1}))
    with pytest.raises(ValueError, match="must not be negative"):
        load_host(path)


def test_cmdline_host_option(tmp_path: Path) -> None:
    """1. Without --host the process models the default host.
    2. --host FILE gives the file's constants; a bad file is one CmdlineError line.
    """
    assert parse(["--profile", "qemu-7.2", *BASE]).host is None
    path = tmp_path / "host.json"
    host = dataclasses.replace(Host(), setup_fixed_s=0.5)
    path.write_text(json.dumps(host.to_json()))
    assert parse(["--profile", "qemu-7.2", "--host", str(path), *BASE]).host == host
    path.write_text("{not json")
    with pytest.raises(CmdlineError, match="--host: host constants"):
        parse(["--profile", "qemu-7.2", f"--host={path}", *BASE])


def test_process_migrates_with_the_given_host(tmp_path: Path) -> None:
    """Two simulator processes started with --host FILE migrate with those constants.

    1. query-migrate's setup-time is the file's setup time (2 s), not the default (3 ms).
    """
    path = tmp_path / "host.json"
    path.write_text(json.dumps(dataclasses.replace(Host(), setup_fixed_s=2.0).to_json()))
    target = SimTarget("qemu-7.2", options=("--time-scale", "20", "--host", str(path)))
    vms = VMFactory(target, tmp_path / "logs")
    try:
        src = vms.launch(VMSpec(memory_mib=256), "src")
        spec = VMSpec(memory_mib=256, incoming=incoming_uri(Transport.TCP, target.traits))
        dst = vms.launch(spec, "dst", wait_guest=False)
        result = migration.migrate(src, dst, Transport.TCP, timeout=60)
        assert result.status == "completed"
        assert result.final["setup-time"] == 2000, result.final
    finally:
        vms.close()

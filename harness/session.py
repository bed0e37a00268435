"""The state of one hvlab pytest session: options, hosts and targets, images, the report.

The plugin (harness/pytest_plugin.py) keeps one ``Session`` per pytest config; the
fixtures and hooks ask it for the targets, the host set, guest images and where a test's
artifacts go.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

from harness import templates
from harness.errors import HarnessError
from harness.guest import GuestImage, guest_image
from harness.hostset import HostSet
from harness.inventory import load_inventory, parse_inventory
from harness.lab.netlab import NetLab
from harness.leaks import owner_tag
from harness.libvirt.target import LIBVIRT_TARGETS, LibvirtTarget, select_libvirt
from harness.report.results import RUN_ID_ENV, RunReport, new_run_id
from harness.spec import Arch
from harness.targets.base import Target
from harness.targets.registry import select


def add_options(parser: pytest.Parser) -> None:
    """The plugin's command line options."""
    group = parser.getgroup("hvlab")
    group.addoption(
        "--target",
        action="append",
        default=[],
        metavar="NAME",
        help="run only these targets (name or prefix, repeatable), e.g. qemu-x86_64",
    )
    group.addoption(
        "--hosts",
        default=None,
        metavar="INI",
        help="inventory of lab hosts (default: hosts.ini next to pytest's rootdir)",
    )
    group.addoption(
        "--report-dir",
        default=None,
        metavar="DIR",
        help="write a report to DIR/<run-id>/ (results.jsonl, results.json, junit.xml)",
    )
    group.addoption(
        "--netns-lab",
        type=int,
        default=0,
        metavar="N",
        help="build a lab of N hosts in network namespaces (own sshd each) for this run "
        "and add them to the inventory (needs root; torn down at the end)",
    )
    group.addoption(
        "--netns-lab-arches",
        default="",
        metavar="A,B",
        help="the guest arches the namespace lab's hosts run (x86_64, aarch64; default "
        "every one): make test runs the lab with x86_64 to stay in its time",
    )
    group.addoption(
        "--keep-artifacts",
        action="store_true",
        help="keep every test's big artifacts (snapshots, disk images, captures); by "
        "default only failed tests keep them",
    )
    group.addoption(
        "--lab-hosts",
        default=None,
        metavar="NAMES",
        help="use only these ssh hosts of the inventory (comma list; the hosts a pool "
        "lease gave this run); local hosts stay",
    )
    group.addoption(
        "--shard",
        default=None,
        metavar="K/N",
        help="run only the K-th of N shards (tests split by a stable hash of their id)",
    )
    group.addoption(
        "--timeout-factor",
        default=None,
        metavar="X",
        help="multiply every harness timeout by X (slow or loaded hosts)",
    )


LAB_ENV = "HVLAB_LAB_INVENTORY"


class Session:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        hosts_opt = config.getoption("--hosts")
        self.hosts_path = Path(hosts_opt) if hosts_opt else config.rootpath / "hosts.ini"
        self.wanted: list[str] = config.getoption("--target")
        self._hostset: HostSet | None = None
        self.lab: NetLab | None = None
        self.owner = uuid.uuid4().hex[:12]
        self._targets: list[Target] | None = None
        self._images: dict[Arch, GuestImage] = {}
        self.templates = templates.TemplateStore()
        self._scratch: Path | None = None
        report_dir = config.getoption("--report-dir")
        self.worker = hasattr(config, "workerinput")  # a pytest-xdist worker
        if report_dir and not self.worker and not os.environ.get(RUN_ID_ENV):
            os.environ[RUN_ID_ENV] = new_run_id()  # workers inherit it: one run folder
        # absolute: artifact paths end up in hypervisor arguments (snapshot dirs, exec:)
        self.report = (
            RunReport(Path(report_dir).resolve(), primary=not self.worker) if report_dir else None
        )

    @property
    def hostset(self) -> HostSet:
        if self._hostset is None:
            hosts = load_inventory(self.hosts_path)
            allowed = self.config.getoption("--lab-hosts")
            if allowed is not None:
                names = {n.strip() for n in allowed.split(",") if n.strip()}
                unknown = names - {h.name for h in hosts}
                if unknown:
                    raise pytest.UsageError(f"--lab-hosts: no such host {', '.join(unknown)}")
                hosts = [h for h in hosts if h.connection == "local" or h.name in names]
            if self.config.getoption("--netns-lab"):
                hosts += parse_inventory(self.lab_inventory(), source="--netns-lab")
            self._hostset = HostSet(hosts, owner=owner_tag(f"ssh-{self.owner}"))
        return self._hostset

    def lab_inventory(self) -> str:
        """The namespace lab's hosts.ini: built by the first (controlling) process, read
        by pytest-xdist workers from the file it names in HVLAB_LAB_INVENTORY."""
        shared = os.environ.get(LAB_ENV)
        if shared:
            return Path(shared).read_text()
        if self.worker:
            raise pytest.UsageError("--netns-lab: a worker found no lab (HVLAB_LAB_INVENTORY)")
        count = int(self.config.getoption("--netns-lab"))
        if count < 2 or count > 8:
            raise pytest.UsageError(f"--netns-lab {count}: use 2 to 8 hosts")
        text = str(self.config.getoption("--netns-lab-arches"))
        try:
            arches = tuple(Arch.parse(a.strip()) for a in text.split(",") if a.strip())
        except ValueError as exc:
            raise pytest.UsageError(f"--netns-lab-arches {text!r}: {exc}") from None
        names = tuple(f"lab{chr(ord('A') + i)}" for i in range(count))
        try:
            self.lab = NetLab(names, owner=owner_tag(f"lab-{self.owner}")).up()
        except HarnessError as exc:
            raise pytest.UsageError(f"--netns-lab: {exc}") from None
        assert self.lab.dir is not None
        path = self.lab.dir / "hosts.ini"
        path.write_text(self.lab.inventory(arches=arches))
        os.environ[LAB_ENV] = str(path)  # workers start after this and inherit it
        return path.read_text()

    @property
    def libvirt_targets(self) -> list[LibvirtTarget]:
        return select_libvirt(self.wanted)

    def record_hosts(self) -> None:
        """Host facts into the report, with the KVM verdicts probed so far."""
        if self.report is not None and self._hostset is not None:
            self.report.update_meta(hosts=self._hostset.facts_json())

    @property
    def targets(self) -> list[Target]:
        if self._targets is None:
            try:
                offered = self.hostset.targets()
                self.record_hosts()
                other = [t.name for t in LIBVIRT_TARGETS]
                self._targets = select(offered, self.wanted, other_names=other)
            except ValueError as exc:
                raise pytest.UsageError(str(exc)) from None
            if self.report is not None:
                self.report.update_meta(targets=[t.name for t in self._targets])
        return self._targets

    def image(self, arch: Arch) -> GuestImage:
        if arch not in self._images:
            self._images[arch] = guest_image(arch)
        return self._images[arch]

    def drop_scratch(self, keep: bool) -> None:
        """The private artifacts folder of a session without --report-dir: removed at
        its end, kept (and named) when a test failed."""
        if self._scratch is None:
            return
        if keep:
            sys.stderr.write(f"hvlab: artifacts of this session are in {self._scratch}\n")
        else:
            shutil.rmtree(self._scratch, ignore_errors=True)
        self._scratch = None

    def artifacts(self, nodeid: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid)[-150:]
        if self.report is not None:
            return self.report.dir / "artifacts" / safe
        if self._scratch is None:  # no --report-dir: a private folder for this session
            self._scratch = Path(tempfile.mkdtemp(prefix="hvlab-artifacts-"))
        return self._scratch / safe

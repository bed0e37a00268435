"""The boot template store (harness/templates.py) under concurrent builds."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path
from typing import Any

from harness.conformance.targets import standard_spec
from harness.guest import guest_image
from harness.leaks import owner_tag
from harness.runner import LOCAL
from harness.spec import Arch
from harness.targets.sim import SimTarget
from harness.templates import TemplateStore


class SlowFolders:
    """The local runner, whose private_dir takes 0.3 s: two builds that start together
    both look for their host's folder before either has made it."""

    def __init__(self) -> None:
        self.name = LOCAL.name

    def private_dir(self, prefix: str) -> Path:
        time.sleep(0.3)
        return LOCAL.private_dir(prefix)

    def __getattr__(self, name: str) -> Any:
        return getattr(LOCAL, name)


def test_two_builds_at_once_share_one_folder_and_close_removes_it(tmp_path: Path) -> None:
    """Verified (the lockstep's two backends build their templates in two threads):
    1. Two templates built at once on one host land in one private folder.
    2. close() removes it: no hvlab-templates folder this test made is left.
    """
    before = set(Path("/tmp").glob("hvlab-templates-*"))
    store, runner = TemplateStore(), SlowFolders()
    target = SimTarget("qemu-7.2", Arch.X86_64)
    image = guest_image(Arch.X86_64)
    base = standard_spec(Arch.X86_64)
    specs = [base, dataclasses.replace(base, memory_mib=128)]
    errors: list[BaseException] = []

    def build(i: int) -> None:
        try:
            store.restore_spec(
                target, specs[i], image, owner_tag("templates-test"), tmp_path / f"logs{i}", runner
            )
        except BaseException as exc:  # the assertion below shows it
            errors.append(exc)

    threads = [threading.Thread(target=build, args=(i,)) for i in range(2)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors
        made = set(Path("/tmp").glob("hvlab-templates-*")) - before
        assert len(made) == 1, made
        (folder,) = made
        assert len(list(folder.glob("*.vmstate"))) == 2
    finally:
        store.close()
    assert not (set(Path("/tmp").glob("hvlab-templates-*")) - before)

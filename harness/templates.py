"""Boot once, restore many: snapshot templates of booted guests (issue: keep CI fast).

The first test that needs a booted VM of a given (target, spec) boots it, waits for the
guest shell, and saves it with a migration into a file (QEMU 7.2: ``migrate
"exec:cat > FILE"``, migration/exec.c). Later tests start the same command line with
``-incoming "exec:cat FILE"``: the stream records a running VM, so QEMU resumes it after
loading (migration/migration.c process_incoming_migration_bh, autostart from the global
state) and the shell is already at its prompt. A restore takes about a second where a
cold TCG boot takes several. Set ``HVLAB_COLD_BOOT=1`` to boot every VM instead.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shlex
import threading
from pathlib import Path

from harness import migration
from harness.errors import HarnessError
from harness.guest import GuestImage
from harness.machine import Machine
from harness.runner import LOCAL, Runner
from harness.spec import VMSpec
from harness.targets.base import Target


def enabled(target: Target, spec: VMSpec) -> bool:
    return (
        target.traits.boot_templates
        and spec.incoming is None
        and not spec.start_paused
        and os.environ.get("HVLAB_COLD_BOOT", "") not in ("1", "yes", "true")
    )


class TemplateStore:
    """Per-process store of saved guests, in a private directory removed at the end."""

    def __init__(self) -> None:
        self._dirs: dict[str, tuple[Runner, Path]] = {}  # host name -> its template folder
        # the lockstep's two backends build their templates at once, in two threads: one
        # folder per host, or the second would replace (and leak) the first
        self._lock = threading.Lock()
        self._files: dict[str, Path] = {}
        self.built = 0
        self.restored = 0

    def _key(self, target: Target, spec: VMSpec, image: GuestImage, runner: Runner) -> str:
        text = repr((runner.name, target.name, spec, str(image.kernel), str(image.initrd)))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def restore_spec(
        self,
        target: Target,
        spec: VMSpec,
        image: GuestImage,
        owner: str,
        logs: Path,
        runner: Runner = LOCAL,
    ) -> VMSpec:
        """``spec`` with -incoming from a template on ``runner``'s host, built if needed."""
        key = self._key(target, spec, image, runner)
        if key not in self._files:
            self._files[key] = self._build(target, spec, image, owner, logs, key, runner)
            self.built += 1
        self.restored += 1
        return dataclasses.replace(spec, incoming=f"exec:cat {shlex.quote(str(self._files[key]))}")

    def _build(
        self,
        target: Target,
        spec: VMSpec,
        image: GuestImage,
        owner: str,
        logs: Path,
        key: str,
        runner: Runner,
    ) -> Path:
        with self._lock:
            if runner.name not in self._dirs:
                self._dirs[runner.name] = (runner, runner.private_dir("hvlab-templates-"))
            path = self._dirs[runner.name][1] / f"{key}.vmstate"
        with Machine(target, spec, image, f"template-{key[:6]}", logs, owner, runner) as vm:
            vm.launch()
            watch = migration.start(vm, f"exec:umask 077 && cat > {shlex.quote(str(path))}")
            result = migration.finish(watch, None, timeout=120)
            if result.status != "completed":
                raise HarnessError(f"saving the boot template failed: {result.final}")
        return path

    def close(self) -> None:
        with self._lock:
            for runner, folder in self._dirs.values():
                runner.remove_tree(folder)
            self._dirs.clear()
            self._files.clear()

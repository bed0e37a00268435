"""Namespace entry point for a private libvirtd (run under ``unshare --mount``).

``unshare --mount --propagation private -- python -m harness.libvirt.ns_entry RUNDIR``
mounts private tmpfs over ``/run`` and ``/var`` (only inside the new mount
namespace), gives it a passwd/group with the ``libvirt-qemu`` account,
binds ``RUNDIR/etc`` over ``/etc/libvirt`` and ``RUNDIR/lib`` over
``/var/lib/libvirt``, then execs ``libvirtd`` with ``RUNDIR/etc/libvirtd.conf``.
Every qemu the daemon spawns inherits the namespace, so two daemons never see
each other's state, pid files or domain definitions. When the last process in
the namespace exits, the tmpfs mounts vanish with it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

LIBVIRTD = "/usr/sbin/libvirtd"


def _mount(*argv: str) -> None:
    subprocess.run(["mount", *argv], check=True)


def main(argv: list[str]) -> int:
    """Prepare the namespace and exec libvirtd; returns only on usage error."""
    if len(argv) not in (1, 2):
        print("usage: python -m harness.libvirt.ns_entry RUNDIR [lo]", file=sys.stderr)
        return 2
    rundir = Path(argv[0])
    if argv[1:] == ["lo"]:
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    _mount("-t", "tmpfs", "-o", "mode=0755", "hvlab-run", "/run")
    _mount("-t", "tmpfs", "-o", "mode=0755", "hvlab-var", "/var")
    for sub in ("lib/libvirt", "cache/libvirt", "log/libvirt", "tmp"):
        Path("/var", sub).mkdir(parents=True, exist_ok=True)
    Path("/var/run").symlink_to("/run")
    # libvirt 9.0 resolves its build-time default user "libvirt-qemu" before it
    # reads qemu.conf (virQEMUDriverConfigNew, src/qemu/qemu_conf.c); give the
    # namespace its own passwd/group holding that account instead of adding
    # one to the host.
    for name, line in (
        ("passwd", "libvirt-qemu:x:64055:64055::/var/lib/libvirt:/bin/false"),
        ("group", "libvirt-qemu:x:64055:\nkvm:x:64056:"),
    ):
        text = Path("/etc", name).read_text()
        (rundir / name).write_text(text.rstrip("\n") + "\n" + line.replace("\\n", "\n") + "\n")
        _mount("--bind", str(rundir / name), f"/etc/{name}")
    _mount("--bind", str(rundir / "etc"), "/etc/libvirt")
    _mount("--bind", str(rundir / "lib"), "/var/lib/libvirt")
    _mount("--bind", str(rundir / "log"), "/var/log/libvirt")
    os.execv(
        LIBVIRTD,
        [
            LIBVIRTD,
            "--listen",
            "--config",
            str(rundir / "etc" / "libvirtd.conf"),
            "--pid-file",
            "/run/libvirtd.pid",
        ],
    )
    return 1  # pragma: no cover - execv does not return


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""avocado.utils.ssh: imported by avocado_qemu, used only by tests not run here."""

from __future__ import annotations


def __getattr__(name: str) -> object:
    raise AttributeError(f"avocado.utils.ssh.{name} is not provided by hvlab's stand-in")

"""Whether KVM works for one architecture on one host, decided on first ask.

The verdict comes from a real probe (harness/hosts.py boots the guest kernel under
``-accel kvm`` with a timeout), never from /dev/kvm existing. A probe needs the guest
image, so it runs only when a selected target asks: ``--target sim`` never probes.
"""

from __future__ import annotations

import enum
from collections.abc import Callable


class Accel(enum.Enum):
    KVM = "kvm"
    TCG = "tcg"
    AUTO = "auto"  # KVM where the probe says it works, else TCG


Probe = Callable[[], tuple[bool, str]]


class KvmVerdict:
    """A lazily probed, cached (works, detail) pair."""

    def __init__(self, probe: Probe | None = None, known: tuple[bool, str] | None = None):
        self._probe = probe
        self._known = known

    @classmethod
    def fixed(cls, works: bool, detail: str) -> KvmVerdict:
        return cls(known=(works, detail))

    def get(self) -> tuple[bool, str]:
        if self._known is None:
            self._known = self._probe() if self._probe is not None else (False, "no KVM")
        return self._known

    @property
    def works(self) -> bool:
        return self.get()[0]

    @property
    def detail(self) -> str:
        return self.get()[1]

    @property
    def decided(self) -> bool:
        return self._known is not None

    def __repr__(self) -> str:
        return f"KvmVerdict({self._known!r})" if self._known else "KvmVerdict(undecided)"


NO_KVM = KvmVerdict.fixed(False, "no KVM")

"""The behaviour catalog's vocabulary: verdicts, expectations, claims, target families.

See :mod:`suites.catalog` for what the verdicts mean and which families there are.

A value is what the test compares with: a status or key name, a number, an ``ErrorReply``
(the class and upstream desc text of a refusal), a ``SlotLimit``, or ``FAILED`` (the command
returns and the migration ends failed). Families where only the docs speak get the doc's
value: for refusals that is the class alone, as the seeds quote no error texts.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Verdict(enum.Enum):
    HOLDS = "holds"
    DIVERGES = "diverges"
    NA = "n/a"


@dataclass(frozen=True)
class Expect:
    verdict: Verdict
    value: Any = None
    evidence: str = ""


@dataclass(frozen=True)
class ErrorReply:
    """A QMP error reply a claim expects: its class, and a part of its desc.

    ``desc`` is upstream text (the claim's evidence or the comment beside it names the
    source); "" where only the class is documented (the seeds quote no error texts).
    """

    error_class: str = "GenericError"
    desc: str = ""

    def mismatch(self, error_class: str, desc: str) -> str | None:
        """Why an error reply is not this one, or None if it is."""
        if error_class != self.error_class:
            return f"class {error_class!r} is not {self.error_class!r} (desc {desc!r})"
        if self.desc not in desc:
            return f"desc {desc!r} does not contain {self.desc!r}"
        return None


@dataclass(frozen=True)
class SlotLimit:
    """How many hot-plugged devices fit, and the error reply for one more."""

    count: int
    refusal: ErrorReply


@dataclass(frozen=True)
class KnownCrash:
    """A hypervisor bug that now and then kills the guest where the claim otherwise
    holds. A test that finds ``signature`` in the dead guest's console records an xfail
    carrying ``evidence``; every other step is still asserted, and a guest that died
    any other way still fails the test."""

    signature: str
    evidence: str


def holds_but_crashes(crash: KnownCrash) -> Expect:
    return Expect(Verdict.HOLDS, crash, crash.evidence)


#: How a refused migration ends when ``migrate`` itself returns {}: its final status.
FAILED = "failed"


def H(value: Any = None) -> Expect:
    return Expect(Verdict.HOLDS, value)


def D(evidence: str, value: Any = None) -> Expect:
    return Expect(Verdict.DIVERGES, value, evidence)


def NA(reason: str) -> Expect:
    return Expect(Verdict.NA, None, reason)


class Subject(enum.Enum):
    """What a claim is about, and so which targets can verify it."""

    HYPERVISOR = "hypervisor"  # QEMU, StratoVirt and their simulator profiles
    LIBVIRT = "libvirt"  # libvirt's migrate API: the model and real libvirtd

    @staticmethod
    def of_family(family: str) -> Subject:
        return Subject.LIBVIRT if family.startswith("libvirt") else Subject.HYPERVISOR


_OTHER_SUBJECT = {
    Subject.HYPERVISOR: NA("a hypervisor claim; the libvirt targets check migrate flag rules"),
    Subject.LIBVIRT: NA("a libvirt API rule; verified on the libvirt targets, not hypervisors"),
}


@dataclass(frozen=True)
class Claim:
    id: str
    source: str
    section: str
    text: str
    doc_value: Any = None
    expect: dict[str, Expect] = field(default_factory=dict)
    subject: Subject = Subject.HYPERVISOR

    def for_family(self, family: str, refinements: tuple[str, ...] = ()) -> Expect:
        """The expectation on a family; ``refinements`` (see :func:`refinements_of`) are
        looked up before it."""
        if Subject.of_family(family) is not self.subject:
            return _OTHER_SUBJECT[self.subject]
        family_chain = {
            "stratovirt-2.4": ["stratovirt-2.4", "stratovirt-2.5"],
            "qemu-aarch64": ["qemu-aarch64", "qemu"],
            "qemu-x86_64": ["qemu-x86_64", "qemu"],
            "libvirt-model": ["libvirt-model", "libvirt"],
            "libvirt-9.0": ["libvirt-9.0", "libvirt"],
        }.get(family, [family])
        for key in [*refinements, *family_chain]:
            if key in self.expect:
                found = self.expect[key]
                if found.value is None and found.verdict is not Verdict.NA:
                    return Expect(found.verdict, self.doc_value, found.evidence)
                return found
        return H(self.doc_value)


def family_of(target_name: str) -> str:
    """Catalog family of a target name.

    Simulator targets are ``sim:<profile>`` (x86_64) or ``sim:<arch>:<profile>``: a
    StratoVirt profile is its own family on every architecture, ``qemu-7.2`` is the
    family of the QEMU binary of that architecture.
    """
    if target_name.startswith("sim:"):
        arch, _, profile = target_name.removeprefix("sim:").rpartition(":")
        if profile.startswith("qemu-"):
            return f"qemu-{arch or 'x86_64'}"
        return profile
    if target_name.startswith("stratovirt"):
        return "stratovirt-2.5"
    return target_name  # qemu-x86_64, qemu-aarch64, libvirt-model, libvirt-9.0


#: The simulator's QEMU profiles on either architecture: a claim names this key where the
#: simulator cannot model what real QEMU does (the reason is the skip reason there).
SIM_QEMU = "sim-qemu"


def refinements_of(target_name: str) -> tuple[str, ...]:
    """Keys looked up before the family's: ``sim-qemu`` for a simulator QEMU target."""
    if target_name.startswith("sim:") and family_of(target_name).startswith("qemu-"):
        return (SIM_QEMU,)
    return ()

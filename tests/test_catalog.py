"""The behaviour catalog is complete and consistent with the suites."""

from __future__ import annotations

import ast
from pathlib import Path

from suites.catalog import (
    CATALOG,
    FAILED,
    ErrorReply,
    SlotLimit,
    Verdict,
    expectation,
    family_of,
)

SUITES = Path(__file__).resolve().parent.parent / "suites"


def _suite_tests() -> tuple[dict[str, list[str]], set[str]]:
    """test function -> catalog ids in its decorators; and every id named anywhere."""
    found: dict[str, list[str]] = {}
    anywhere: set[str] = set()
    for path in sorted(SUITES.glob("test_*.py")):
        tree = ast.parse(path.read_text())
        param_ids: list[str] = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "catalog":
                param_ids.extend(a.value for a in node.args if isinstance(a, ast.Constant))
        anywhere.update(param_ids)
        anywhere.update(
            n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and n.value in CATALOG
        )
        by_name: dict[str, set[str]] = {}
        for node in tree.body:
            if isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                ids_here = {
                    n.value
                    for n in ast.walk(node)
                    if isinstance(n, ast.Constant) and n.value in CATALOG
                }
                for t in targets:
                    if isinstance(t, ast.Name):
                        by_name[t.id] = ids_here
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                ids = []
                for dec in node.decorator_list:
                    for sub in ast.walk(dec):
                        if isinstance(sub, ast.Call) and getattr(sub.func, "attr", "") in (
                            "catalog",
                            "parametrize",
                        ):
                            ids += [
                                a.value
                                for a in ast.walk(sub)
                                if isinstance(a, ast.Constant) and a.value in CATALOG
                            ]
                            ids += [
                                i
                                for a in ast.walk(sub)
                                if isinstance(a, ast.Name)
                                for i in sorted(by_name.get(a.id, ()))
                            ]
                found[f"{path.name}::{node.name}"] = ids
    return found, anywhere


def test_every_claim_has_a_test_and_every_test_a_claim() -> None:
    """Catalog coverage, checked statically over suites/.

    1. Every catalog id is named by at least one suite test.
    2. Every suite test names at least one catalog id.
    3. Every named id exists in the catalog.
    """
    tests, named = _suite_tests()
    assert sorted(set(CATALOG) - named) == []
    assert [t for t, ids in tests.items() if not ids] == []
    assert named <= set(CATALOG)


def test_claims_cite_their_sources() -> None:
    """Every claim names its document and section; divergences carry evidence.

    1. source is one of the seed files, or (for what the seeds are silent on, such as
       the wire after a migration) QEMU's own documentation by file; section is set.
    2. Every DIVERGES and NA expectation has a non-empty evidence text.
    """
    seeds = {p.name for p in (SUITES.parent.parent / "shared" / "seeds").glob("*.txt")}
    for claim in CATALOG.values():
        first, *rest = claim.source.split(" ")
        upstream = first == "QEMU" and bool(rest) and "/" in rest[0]
        assert (first in seeds or upstream) and claim.section, claim.id
        for exp in claim.expect.values():
            if exp.verdict is not Verdict.HOLDS:
                assert exp.evidence, claim.id


def test_family_lookup() -> None:
    """Targets map to families, with fallbacks.

    1. sim:qemu-7.2 and real QEMU share the qemu family; aarch64 refines it.
    2. Real StratoVirt follows the 2.5 code; sim:stratovirt-2.4 falls back to 2.5.
    3. sim:stratovirt-doc holds every documented claim it is not n/a for.
    4. Documented equivalents come through (QEMU's "cancelled").
    """
    assert family_of("sim:qemu-7.2") == "qemu-x86_64"
    assert expectation("LC-HOTPLUGGABLE-CPUS", "qemu-aarch64").value == "refused"
    assert expectation("LC-HOTPLUGGABLE-CPUS", "qemu-x86_64").value is None
    assert family_of("stratovirt-x86_64") == "stratovirt-2.5"
    assert expectation("HP-MMIO-BLK-MAX", "sim:stratovirt-2.4").verdict is Verdict.DIVERGES
    for cid in CATALOG:
        assert expectation(cid, "sim:stratovirt-doc").verdict in (Verdict.HOLDS, Verdict.NA)
    assert expectation("CANCEL-ACTIVE", "qemu-x86_64").value == "cancelled"
    assert expectation("CANCEL-ACTIVE", "sim:stratovirt-doc").value == "canceled"


TARGETS = (
    "qemu-x86_64",
    "qemu-aarch64",
    "sim:qemu-7.2",
    "stratovirt-x86_64",
    "sim:stratovirt-doc",
    "sim:stratovirt-2.4",
    "sim:stratovirt-2.5",
    "sim:aarch64:qemu-7.2",
    "sim:aarch64:stratovirt-2.5",
)
# How each refusal claim's value is read by its suite (test_hotplug, test_limitations).
REFUSAL_SHAPES: dict[str, tuple[type, ...]] = {
    "HP-STD-ADDR0": (ErrorReply,),
    "HP-STD-ROOTPORT": (ErrorReply,),
    "HP-MMIO-BLK-MAX": (SlotLimit,),
    "HP-MMIO-NET-MAX": (SlotLimit,),
    "CPU-HOTPLUG-MAX": (ErrorReply,),
    "LIM-MIG-BLOCKERS": (ErrorReply,),
    "MIG-MACHINE-TYPES": (ErrorReply,),
    "LIM-MISMATCH-MEM": (ErrorReply, str),
    "LIM-MISMATCH-SMP": (ErrorReply, str),
    "LIM-MISMATCH-MAC": (ErrorReply, str),
}


def test_refusal_values_have_their_shape() -> None:
    """Every target that runs a refusal test gets a value that test can check.

    1. Hotplug refusals are an ErrorReply (or a SlotLimit holding one) on every target
       the claim is not n/a for.
    2. Migration refusals are an ErrorReply (refused at migrate) or FAILED.
    3. An ErrorReply names a QMP error class (qapi/error.json ErrorClass).
    """
    classes = {"GenericError", "CommandNotFound", "DeviceNotActive", "DeviceNotFound"}
    for cid, shapes in REFUSAL_SHAPES.items():
        for target in TARGETS:
            exp = expectation(cid, target)
            if exp.verdict is Verdict.NA:
                continue
            assert isinstance(exp.value, shapes), (cid, target, exp.value)
            if isinstance(exp.value, str):
                assert exp.value == FAILED, (cid, target)
            reply = exp.value.refusal if isinstance(exp.value, SlotLimit) else exp.value
            if isinstance(reply, ErrorReply):
                assert reply.error_class in classes, (cid, target)

"""The harness's migration statuses and runstates: QAPI's names, read strictly.

MigrationResult, Sample and the watchers carry ``MigrationStatus``/``RunState`` enums
(harness/migration.py); their members are checked against QEMU 7.2's own QAPI schema
from the source package setup fetches (qapi/migration.json, qapi/run-state.json).
"""

from __future__ import annotations

import ast
import json
import re

import pytest

from harness import migration
from harness.errors import HarnessError
from harness.guest import cache_root
from harness.migration import MigrationResult, MigrationStatus, RunState, Sample

QAPI = cache_root() / "qemu-source" / "qemu" / "qapi"
needs_source = pytest.mark.skipif(
    not QAPI.is_dir(),
    reason=f"QEMU's source is not in {QAPI.parent}: make setup (setup/qemu-source.sh) fetches it",
)


def qapi_enum(schema: str, name: str) -> list[str]:
    """The members of one enum of a QAPI schema file (Python-literal syntax, # comments)."""
    text = (QAPI / schema).read_text()
    m = re.search(r"\{ 'enum': '" + name + r"',\s*'data': (\[[^\]]*\])", text)
    assert m, f"{schema} has no enum {name}"
    return [str(v) for v in ast.literal_eval(re.sub(r"#[^\n]*", "", m.group(1)))]


@needs_source
def test_statuses_are_qapi_names() -> None:
    """The enums speak QEMU 7.2's QAPI exactly.

    1. MigrationStatus has every name of qapi/migration.json's MigrationStatus and no
       other but StratoVirt's "canceled" (migration/src/protocol.rs).
    2. RunState has exactly qapi/run-state.json's RunState.
    3. The terminal statuses are completed, failed and both cancel spellings.
    """
    qemu = qapi_enum("migration.json", "MigrationStatus")
    assert len(qemu) == 14
    assert sorted(s.value for s in MigrationStatus) == sorted([*qemu, "canceled"])
    assert sorted(s.value for s in RunState) == sorted(qapi_enum("run-state.json", "RunState"))
    assert {"completed", "failed", "cancelled", "canceled"} == migration.TERMINAL


def test_replies_are_read_into_enums() -> None:
    """A query-migrate or query-status answer becomes an enum member.

    1. A status is the member, and still equals its QAPI string.
    2. An answer without a status is "none" (QEMU before any migrate).
    3. A saved result writes the statuses as the plain strings QEMU sent.
    """
    s = Sample.from_info(0.5, {"status": "postcopy-active", "ram": {"remaining": 4096}})
    assert s.status is MigrationStatus.POSTCOPY_ACTIVE and s.status == "postcopy-active"
    assert migration.status_of({}, "vm") is MigrationStatus.NONE
    assert migration.runstate_of({"status": "postmigrate"}, "vm") is RunState.POSTMIGRATE
    result = MigrationResult(
        MigrationStatus.COMPLETED,
        history=[MigrationStatus.ACTIVE, MigrationStatus.COMPLETED],
        samples=[s],
        src_runstate=RunState.POSTMIGRATE,
        dst_runstate=RunState.RUNNING,
    )
    data = json.loads(json.dumps(result.to_json(), default=str))
    assert data["status"] == "completed" and data["status_history"] == ["active", "completed"]
    assert data["samples"][0]["status"] == "postcopy-active"
    assert (data["src_runstate"], data["dst_runstate"]) == ("postmigrate", "running")


@pytest.mark.parametrize(
    ("reader", "reply", "text"),
    [
        (
            migration.status_of,
            {"status": "Active"},
            "vm1: query-migrate reports unknown status 'Active'",
        ),
        (migration.status_of, {"status": 3}, "vm1: query-migrate reports unknown status 3"),
        (
            migration.runstate_of,
            {"status": "frozen"},
            "vm1: query-status reports unknown runstate 'frozen'",
        ),
        (migration.runstate_of, {}, "vm1: query-status reports unknown runstate None"),
    ],
)
def test_unknown_names_are_refused(reader, reply, text) -> None:  # type: ignore[no-untyped-def]
    """A name outside QAPI's is an error naming the VM and the value, not a silent
    string a comparison would never match."""
    with pytest.raises(HarnessError) as err:
        reader(reply, "vm1")
    assert str(err.value) == text

"""What the migration-type suites ask of a target's migration knobs."""

from __future__ import annotations

from typing import Any

from harness.fixtures import VMFactory


def migration_capabilities(vms: VMFactory) -> dict[str, bool] | None:
    """QEMU announces status changes as MIGRATION events only with the events capability."""
    return {"events": True} if vms.target.traits.migration_events else None


def tuning(vms: VMFactory, **parameters: Any) -> dict[str, Any] | None:
    """Migration parameters, on targets that have the knobs (StratoVirt has none)."""
    return parameters if vms.target.traits.migration_tuning else None

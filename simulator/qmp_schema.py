"""Argument checks the real QMP layers do before a command runs, in each dialect's words.

QEMU (qapi/qmp-dispatch.c, qobject-input-visitor.c): "Parameter 'x' is missing",
"Invalid parameter type for 'x', expected: integer", "Parameter 'x' is unexpected".
StratoVirt (serde, qmp_schema.rs with ``deny_unknown_fields``): "missing field `x`",
"invalid type: ..., expected ...", "unknown field `x`".
"""

from __future__ import annotations

from typing import Any

# type names: str, int, bool, list, dict, any
_T = dict[str, tuple[str, bool]]  # arg -> (type, required)

#: Commands with a closed argument set. ``None`` means open (any extra keys allowed).
SCHEMA: dict[str, tuple[_T, bool]] = {
    "qmp_capabilities": ({"enable": ("list", False)}, False),
    "migrate": (
        {
            "uri": ("str", True),
            "blk": ("bool", False),
            "inc": ("bool", False),
            "detach": ("bool", False),
            "resume": ("bool", False),
        },
        True,
    ),
    "migrate_cancel": ({}, False),
    "query-migrate": ({}, False),
    "query-status": ({}, False),
    "query-version": ({}, False),
    "query-commands": ({}, False),
    "stop": ({}, False),
    "cont": ({}, False),
    "quit": ({}, False),
    "system_reset": ({}, False),
    "query-cpus": ({}, False),
    "query-cpus-fast": ({}, False),
    "query-hotpluggable-cpus": ({}, False),
    "query-balloon": ({}, False),
    "query-migrate-parameters": ({}, False),
    "query-migrate-capabilities": ({}, False),
    "migrate-start-postcopy": ({}, False),
    "migrate-continue": ({"state": ("str", True)}, False),
    "migrate-recover": ({"uri": ("str", True)}, False),
    "migrate-pause": ({}, False),
    "migrate-set-capabilities": ({"capabilities": ("list", True)}, False),
    "device_del": ({"id": ("str", True)}, False),
    "blockdev-del": ({"node-name": ("str", True)}, False),
    "netdev_del": ({"id": ("str", True)}, False),
    "balloon": ({"value": ("int", True)}, False),
}
#: Open commands: only the listed keys are typed; others pass through.
OPEN: dict[str, _T] = {
    "device_add": {"driver": ("str", True), "id": ("str", False)},
    "blockdev-add": {"node-name": ("str", True), "driver": ("str", False)},
    "netdev_add": {"type": ("str", True), "id": ("str", True)},
    "migrate-set-parameters": {},
}
#: StratoVirt's argument structs where they differ (machine_manager/src/qmp/qmp_schema.rs:
#: netdev_add takes id plus ifname or fds; its type is optional).
STRATO_OPEN: dict[str, _T] = {
    "netdev_add": {"type": ("str", False), "id": ("str", True)},
}
#: QEMU's where they differ: blockdev-add's node-name is optional in the schema
#: (qapi/block-core.json BlockdevOptions), so the visitor asks for the driver's own
#: members first and blockdev.c qmp_blockdev_add for the node name after (qemu_qdev.py)
QEMU_OPEN: dict[str, _T] = {
    "blockdev-add": {"driver": ("str", True), "node-name": ("str", False)},
}
_QEMU_TYPE = {
    "str": "string",
    "int": "integer",
    "bool": "boolean",
    "list": "array",
    "dict": "object",
}


def _is(value: Any, typ: str) -> bool:
    if typ == "str":
        return isinstance(value, str)
    if typ == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if typ == "bool":
        return isinstance(value, bool)
    if typ == "list":
        return isinstance(value, list)
    if typ == "dict":
        return isinstance(value, dict)
    return True


def _serde_type(value: Any) -> str:
    if isinstance(value, bool):
        return f"boolean `{str(value).lower()}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{value}`"
    if isinstance(value, str):
        return f'string "{value[:64]}"'
    if value is None:
        return "null"
    return "sequence" if isinstance(value, list) else "map"


def check(cmd: str, args: dict[str, Any], strato: bool) -> str | None:
    """The error text for bad arguments, or None when the layer above would accept them."""
    if cmd in SCHEMA:
        fields, _ = SCHEMA[cmd]
        closed = True
    elif cmd in OPEN:
        dialect = STRATO_OPEN if strato else QEMU_OPEN
        fields, closed = (dialect if cmd in dialect else OPEN)[cmd], False
    else:
        return None
    for key, (typ, required) in fields.items():
        if key not in args:
            if required:
                return f"missing field `{key}`" if strato else f"Parameter '{key}' is missing"
            continue
        if not _is(args[key], typ):
            if strato:
                return f"invalid type: {_serde_type(args[key])}, expected {typ}"
            return f"Invalid parameter type for '{key}', expected: {_QEMU_TYPE[typ]}"
    if closed:
        for key in args:
            if key not in fields:
                if strato:
                    return f"unknown field `{key}`"
                return f"Parameter '{key}' is unexpected"
    return None

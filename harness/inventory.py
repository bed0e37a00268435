"""hosts.ini (Ansible INI inventory) -> frozen Host records. Pure: no I/O beyond reading.

Supported: ``[group]`` host lines with ``key=value`` vars, ``[group:vars]``,
``[group:children]``, comments (``#``, ``;``). Every error names the file and line.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import InventoryError

_SECTION = re.compile(r"^\[([A-Za-z0-9_.-]+)(?::(vars|children))?\]$")
_NAME = re.compile(r"^[A-Za-z0-9_.:-]+$")
CONNECTIONS = ("local", "ssh")


@dataclass(frozen=True)
class Host:
    name: str
    connection: str  # "local" or "ssh"
    address: str
    user: str | None = None
    port: int | None = None
    groups: frozenset[str] = frozenset()
    vars: tuple[tuple[str, str], ...] = ()

    def var(self, key: str, default: str | None = None) -> str | None:
        return dict(self.vars).get(key, default)

    @property
    def testinfra_spec(self) -> str:
        """The testinfra backend URL for this host."""
        if self.connection == "local":
            return "local://"
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        return f"ssh://{user}{self.address}{port}"


@dataclass
class _Draft:
    vars: dict[str, str] = field(default_factory=dict)
    groups: set[str] = field(default_factory=set)
    line: int = 0


def _parse_vars(text: str, where: str) -> dict[str, str]:
    try:
        words = shlex.split(text, comments=False)
    except ValueError as exc:
        raise InventoryError(f"{where}: {exc}") from None
    out: dict[str, str] = {}
    for word in words:
        if "=" not in word:
            raise InventoryError(f"{where}: expected key=value, got {word!r}")
        key, value = word.split("=", 1)
        if not key:
            raise InventoryError(f"{where}: empty variable name in {word!r}")
        out[key] = value
    return out


def parse_inventory(text: str, source: str = "hosts.ini") -> list[Host]:
    hosts: dict[str, _Draft] = {}
    group_vars: dict[str, dict[str, str]] = {}
    children: dict[str, set[str]] = {}
    section: tuple[str, str | None] = ("ungrouped", None)
    for number, raw in enumerate(text.splitlines(), start=1):
        where = f"{source}:{number}"
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            m = _SECTION.match(line)
            if not m:
                raise InventoryError(f"{where}: bad section header {line!r}")
            section = (m.group(1), m.group(2))
            continue
        group, kind = section
        if kind == "vars":
            if "=" not in line:
                raise InventoryError(f"{where}: expected key=value in [{group}:vars]")
            group_vars.setdefault(group, {}).update(_parse_vars(line, where))
            continue
        name, _, rest = line.partition(" ")
        if not _NAME.match(name) or "[" in name:
            raise InventoryError(f"{where}: bad host or group name {name!r}")
        if kind == "children":
            if rest.strip():
                raise InventoryError(f"{where}: [{group}:children] lines hold one group name")
            children.setdefault(group, set()).add(name)
            continue
        draft = hosts.setdefault(name, _Draft(line=number))
        draft.groups.add(group)
        draft.vars.update(_parse_vars(rest, where))
    known_groups = {g for d in hosts.values() for g in d.groups} | set(children)
    for parent, kids in children.items():
        for kid in kids:
            if kid not in known_groups:
                raise InventoryError(f"{source}: [{parent}:children] names unknown group {kid!r}")
    for group in group_vars:
        if group not in known_groups and group != "all":
            raise InventoryError(f"{source}: [{group}:vars] is for a group with no hosts")

    def expand(group: str, seen: frozenset[str] = frozenset()) -> set[str]:
        if group in seen:
            raise InventoryError(f"{source}: group {group!r} is its own child")
        out = {group}
        for parent, kids in children.items():
            if group in kids:
                out |= expand(parent, seen | {group})
        return out

    result = []
    for name, draft in hosts.items():
        groups = set()
        for g in draft.groups:
            groups |= expand(g)
        merged: dict[str, str] = dict(group_vars.get("all", {}))
        for g in sorted(groups):
            merged.update(group_vars.get(g, {}))
        merged.update(draft.vars)
        result.append(_make_host(name, draft, groups, merged, f"{source}:{draft.line}"))
    return result


def _make_host(
    name: str, draft: _Draft, groups: set[str], merged: dict[str, str], where: str
) -> Host:
    address = merged.get("ansible_host", name)
    connection = merged.get("ansible_connection")
    if connection is None:
        connection = "local" if address in ("localhost", "127.0.0.1", "::1") else "ssh"
    if connection not in CONNECTIONS:
        raise InventoryError(
            f"{where}: host {name}: ansible_connection={connection!r} is not one of "
            f"{', '.join(CONNECTIONS)}"
        )
    port_text = merged.get("ansible_port")
    port = None
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise InventoryError(f"{where}: host {name}: ansible_port={port_text!r} is not a port")
        port = int(port_text)
    arch = merged.get("hvlab_arch")
    if arch is not None and arch not in ("x86_64", "aarch64"):
        raise InventoryError(f"{where}: host {name}: hvlab_arch={arch!r} (use x86_64 or aarch64)")
    return Host(
        name=name,
        connection=connection,
        address=address,
        user=merged.get("ansible_user"),
        port=port,
        groups=frozenset(groups),
        vars=tuple(sorted(merged.items())),
    )


def load_inventory(path: Path) -> list[Host]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InventoryError(f"{path}: no such inventory file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InventoryError(f"{path}: cannot read: {exc}") from None
    hosts = parse_inventory(text, str(path))
    if not hosts:
        raise InventoryError(f"{path}: no hosts defined")
    return hosts

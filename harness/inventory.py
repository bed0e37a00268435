"""hosts.ini (Ansible INI inventory) -> frozen Host records. Pure: no I/O beyond reading.

Supported: ``[group]`` host lines (``name`` or ``name:port``, then ``key=value`` vars and
an optional ``# comment``), ``[group:vars]`` (one ``key=value`` a line, the value is the
rest of the line), ``[group:children]``, comment lines (``#``, ``;``). Host ranges
(``web[1:3]``) are refused. Every error names the file and line.

Variables resolve as ansible-core's INI plugin and VariableManager do
(lib/ansible/plugins/inventory/ini.py, lib/ansible/inventory/helpers.py sort_groups,
lib/ansible/vars/manager.py): ``[all:vars]`` lowest, then the host's groups and their
ancestors ordered by (depth, ansible_group_priority, name) so children override parents
and a later name overrides an earlier one at the same depth, then the host's own vars,
later lines over earlier ones. A group's depth is its longest path from ``all``. Values
are text: where Ansible's literal_eval makes a string the text is that string (quotes
gone), where it makes a number, bool, list or dict the text is the literal as written.
"""

from __future__ import annotations

import ast
import ipaddress
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import InventoryError

_SECTION = re.compile(r"^\[([A-Za-z0-9_.-]+)(?::(vars|children))?\]\s*(?:#.*)?$")
_NAME = re.compile(r"^[A-Za-z0-9_.:-]+$")
_HOST_PORT = re.compile(r"^([^:]+):([0-9]+)$")
CONNECTIONS = ("local", "ssh")
_PORT = re.compile(r"[0-9]{1,5}", re.ASCII)
_USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}", re.ASCII)
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)", re.ASCII)


def valid_address(text: str) -> bool:
    """An IPv4/IPv6 literal or a DNS host name (RFC 1123): nothing ssh could read as an
    option, a URL query (``?ssh_config=``) or a path."""
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        pass
    return 0 < len(text) <= 253 and all(_LABEL.fullmatch(p) for p in text.split("."))


PRIORITY = "ansible_group_priority"  # sets the group's priority; not a variable


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
    groups: list[str] = field(default_factory=list)
    line: int = 0


@dataclass
class _Group:
    vars: dict[str, str] = field(default_factory=dict)
    parents: set[str] = field(default_factory=set)
    priority: int = 1
    declared: bool = False  # by [name] or [name:children]; [name:vars] alone is not enough
    first_line: int = 0  # where it was first named, for "undefined group" errors
    named_by: str = ""  # that section, e.g. "[lab:children]"


def _value(text: str) -> str:
    """A value as Ansible reads it (ini.py _parse_value), kept as text (see above)."""
    try:
        parsed = ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return text
    return parsed if isinstance(parsed, str) else text


def _parse_host_vars(words: list[str], where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for word in words:
        if "=" not in word:
            raise InventoryError(f"{where}: expected key=value, got {word!r}")
        key, value = word.split("=", 1)
        if not key:
            raise InventoryError(f"{where}: empty variable name in {word!r}")
        out[key] = _value(value)
    return out


def _parse_host_line(line: str, where: str) -> tuple[str, dict[str, str]]:
    try:
        words = shlex.split(line, comments=True)
    except ValueError as exc:
        raise InventoryError(f"{where}: {exc}") from None
    name, found = words[0], _parse_host_vars(words[1:], where)
    if not _NAME.match(name) or "[" in name:
        raise InventoryError(f"{where}: bad host or group name {name!r}")
    m = _HOST_PORT.match(name)
    if m:  # "host:port" (one colon; a bare IPv6 address has several)
        name = m.group(1)
        found = {"ansible_port": m.group(2), **found}
    elif name.count(":") == 1:
        raise InventoryError(f"{where}: bad port in host {name!r}")
    return name, found


def _var_line(line: str, where: str, group: str) -> tuple[str, str]:
    if "=" not in line:
        raise InventoryError(f"{where}: expected key=value in [{group}:vars]")
    key, value = (part.strip() for part in line.split("=", 1))
    if not key:
        raise InventoryError(f"{where}: empty variable name in [{group}:vars]")
    return key, _value(value)


def _depths(groups: dict[str, _Group], source: str) -> dict[str, int]:
    """Longest path from ``all`` (ansible Group.depth); a cycle is an error."""
    depth: dict[str, int] = {"all": 0}

    def visit(name: str, path: tuple[str, ...]) -> int:
        if name in path:
            raise InventoryError(f"{source}: group {name!r} is its own child")
        if name not in depth:
            parents = groups[name].parents or {"all"}
            depth[name] = 1 + max(visit(p, (*path, name)) for p in parents)
        return depth[name]

    for name in groups:
        visit(name, ())
    return depth


def parse_inventory(text: str, source: str = "hosts.ini") -> list[Host]:
    hosts: dict[str, _Draft] = {}
    groups: dict[str, _Group] = {
        "all": _Group(declared=True),
        "ungrouped": _Group(declared=True, parents={"all"}),
    }

    def group(name: str, number: int, named_by: str) -> _Group:
        if name not in groups:
            groups[name] = _Group(first_line=number, named_by=named_by)
        return groups[name]

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
            entry = group(section[0], number, f"[{section[0]}:vars]")
            entry.declared = entry.declared or section[1] != "vars"
            continue
        name, kind = section
        if kind == "vars":
            key, value = _var_line(line, where, name)
            if key == PRIORITY:
                if not re.fullmatch(r"[+-]?[0-9]+", value.strip()):
                    raise InventoryError(f"{where}: {PRIORITY}={value!r} is not an integer")
                groups[name].priority = int(value)
            else:
                groups[name].vars[key] = value
        elif kind == "children":
            child = line.split("#", 1)[0].strip()
            if not _NAME.match(child) or ":" in child:
                raise InventoryError(f"{where}: [{name}:children] lines hold one group name")
            group(child, number, f"[{name}:children]").parents.add(name)
        else:
            host, found = _parse_host_line(line, where)
            draft = hosts.setdefault(host, _Draft(line=number))
            if name not in draft.groups:
                draft.groups.append(name)
            draft.vars.update(found)
    for name, entry in groups.items():
        if not entry.declared:
            what = "is for" if entry.named_by.endswith(":vars]") else "names"
            raise InventoryError(
                f"{source}:{entry.first_line}: {entry.named_by} {what} unknown group {name!r}"
            )
    depth = _depths(groups, source)

    def ancestors(name: str) -> set[str]:
        out = {name}
        for parent in groups[name].parents:
            out |= ancestors(parent)
        return out

    result = []
    for name, draft in hosts.items():
        direct = [g for g in draft.groups if g != "ungrouped"] or ["ungrouped"]
        member: set[str] = set()
        for g in direct:
            member |= ancestors(g)
        member.discard("all")
        merged: dict[str, str] = dict(groups["all"].vars)
        for g in sorted(member, key=lambda g: (depth[g], groups[g].priority, g)):
            merged.update(groups[g].vars)
        merged.update(draft.vars)
        result.append(_make_host(name, member, merged, f"{source}:{draft.line}"))
    return result


def _make_host(name: str, groups: set[str], merged: dict[str, str], where: str) -> Host:
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
        # ASCII digits only: str.isdigit() also takes "٢٢" and int() reads it as 22
        if not _PORT.fullmatch(port_text) or not 0 < int(port_text) < 65536:
            raise InventoryError(f"{where}: host {name}: ansible_port={port_text!r} is not a port")
        port = int(port_text)
    # These reach ssh's and QEMU's command lines: only plain names and addresses pass.
    for key, value, valid in (
        ("ansible_host", address, valid_address),
        ("hvlab_lab_address", merged.get("hvlab_lab_address"), valid_address),
        ("ansible_user", merged.get("ansible_user"), _USER.fullmatch),
    ):
        if value is not None and not valid(value):
            raise InventoryError(
                f"{where}: host {name}: {key}={value!r} is not a plain "
                f"{'user name' if key == 'ansible_user' else 'host name or IP address'}"
            )
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

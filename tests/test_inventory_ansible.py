"""hvlab's hosts.ini parser resolves host variables exactly as Ansible does.

Each inventory is given to the real ``ansible-inventory -i FILE --list`` (ansible-core,
the ``dev`` extra) and to :func:`harness.inventory.parse_inventory`; the host names and
every host's resolved variables must be the same. hvlab keeps values as text (see
harness/inventory.py): a string compares equal as is, a number, bool, list or dict
compares after ``ast.literal_eval`` of hvlab's text.
"""

from __future__ import annotations

import ast
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.inventory import parse_inventory

ROOT = Path(__file__).resolve().parent.parent


def _ansible_inventory() -> str | None:
    beside = Path(sys.executable).with_name("ansible-inventory")
    return str(beside) if beside.exists() else shutil.which("ansible-inventory")


ANSIBLE_INVENTORY = _ansible_inventory()
pytestmark = pytest.mark.skipif(
    ANSIBLE_INVENTORY is None, reason="ansible-inventory missing: pip install -e '.[dev]'"
)

# Group vars conflicting at three depths, with names ordered against the depths
# (zeta > mid > alpha alphabetically; alpha is the deepest), so an alphabetical merge
# gives the wrong winner. all:vars is lowest, host vars highest.
DEPTHS = """
[alpha]
h1
h2 level=host
[mid:children]
alpha
[zeta:children]
mid
[other]
h3
[all:vars]
level=all
only_all=yes
[zeta:vars]
level=zeta
from_zeta=z
[mid:vars]
level=mid
from_mid=m
[alpha:vars]
level=alpha
"""

# Same depth: later name wins unless ansible_group_priority says otherwise; a group reached
# by a long and a short path takes the long path's depth.
SIBLINGS = """
[a]
h1
[b]
h1
[c]
h2
[d]
h2
[c:vars]
who=c
ansible_group_priority=5
[d:vars]
who=d
[a:vars]
who=a
[b:vars]
who=b
[deep:children]
long
[long:children]
e
[e]
h1
h3
[short:children]
e
[deep:vars]
path=deep
[long:vars]
path=long
[e:vars]
path=e
ranked=e
[short:vars]
ranked=short
ansible_group_priority=9
"""

# Host lines and values: host:port, ungrouped hosts, inline comments, quotes, literals,
# vars spread over several sections (later wins), [g:vars] before [g], pending children.
SYNTAX = """
top ansible_connection=local role=first
; a comment line
[late:vars]
spaced = two words here
number=0x10
flag=True
listed=[1, 2]
quoted="a b"
[parent:children]
late
[late]
web:2222 ansible_user=root # ssh user
db ansible_host=192.0.2.7 port_text='22' note="x y" role=db
top role=second
[other]
db role=again
[parent:vars]
number=1
"""


def _ansible_hostvars(text: str, tmp_path: Path) -> dict[str, dict[str, Any]]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(text, encoding="utf-8")
    home = tmp_path / "ansible-home"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "ANSIBLE_HOME": str(home),
        "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
        "ANSIBLE_INVENTORY_ENABLED": "ini",
        "LC_ALL": "C.UTF-8",
    }
    assert ANSIBLE_INVENTORY is not None
    done = subprocess.run(
        [ANSIBLE_INVENTORY, "-i", str(inventory), "--list"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    hostvars: dict[str, dict[str, Any]] = json.loads(done.stdout)["_meta"]["hostvars"]
    return hostvars


def _matches(hvlab_text: str, ansible_value: Any) -> bool:
    if isinstance(ansible_value, str):
        return hvlab_text == ansible_value
    try:
        return bool(ast.literal_eval(hvlab_text) == ansible_value)
    except (ValueError, SyntaxError):
        return False


def assert_same_as_ansible(text: str, tmp_path: Path) -> dict[str, dict[str, str]]:
    """Both parsers know the same hosts, each with the same resolved variables."""
    ansible = _ansible_hostvars(text, tmp_path)
    ours = {h.name: dict(h.vars) for h in parse_inventory(text, "hosts.ini")}
    assert set(ours) == set(ansible)
    for name, theirs in ansible.items():
        assert set(ours[name]) == set(theirs), name
        wrong = {k: (ours[name][k], v) for k, v in theirs.items() if not _matches(ours[name][k], v)}
        assert not wrong, (name, wrong)
    return ours


def test_group_depth_decides_over_name(tmp_path: Path) -> None:
    """Verified:
    1. Ansible and hvlab resolve every host's variables alike.
    2. The deepest group wins over its ancestors (alpha over mid over zeta), whatever
       the names; a host var wins over all groups; all:vars is the fallback.
    """
    ours = assert_same_as_ansible(DEPTHS, tmp_path)
    assert ours["h1"]["level"] == "alpha" and ours["h2"]["level"] == "host"
    assert ours["h3"]["level"] == "all" and ours["h1"]["from_zeta"] == "z"


def test_same_depth_by_name_and_priority(tmp_path: Path) -> None:
    """Verified:
    1. Ansible and hvlab resolve every host's variables alike.
    2. At one depth the later name wins (b over a); ansible_group_priority reorders
       (c over d) and is not a variable.
    3. A group's depth is its longest path from all (e under deep->long beats short).
    """
    ours = assert_same_as_ansible(SIBLINGS, tmp_path)
    assert ours["h1"]["who"] == "b" and ours["h2"]["who"] == "c"
    assert "ansible_group_priority" not in ours["h2"]
    assert ours["h1"]["path"] == "e" and ours["h1"]["ranked"] == "e"


def test_host_lines_and_values(tmp_path: Path) -> None:
    """Verified:
    1. Ansible and hvlab resolve every host's variables alike: host:port, comments,
       quoted values, literals, a [g:vars] line's value up to the end of the line.
    2. A host's later line overrides its earlier vars.
    """
    ours = assert_same_as_ansible(SYNTAX, tmp_path)
    assert ours["web"]["ansible_port"] == "2222"
    assert ours["top"]["role"] == "second" and ours["db"]["role"] == "again"
    assert ours["db"]["spaced"] == "two words here"


def test_shipped_and_example_inventories(tmp_path: Path) -> None:
    """Verified:
    1. The repository's hosts.ini resolves alike in Ansible and hvlab.
    2. So does the same file with its lab-host examples uncommented.
    """
    shipped = (ROOT / "hosts.ini").read_text(encoding="utf-8")
    assert_same_as_ansible(shipped, tmp_path / "shipped")
    example = "\n".join(
        line.removeprefix("# ") if line.startswith("# [") or line.startswith("# lab-") else line
        for line in shipped.splitlines()
    )
    example = example.replace("# stratovirt_path", "stratovirt_path")
    assert "lab-arm-01" in example
    assert_same_as_ansible(example, tmp_path / "example")


def _random_inventory(seed: int) -> str:
    """A random group DAG with hosts and conflicting vars at every level."""
    rng = random.Random(seed)
    names = rng.sample([f"g{i:02d}" for i in range(40)], 12)
    lines: list[str] = []
    for i, name in enumerate(names):
        parents = rng.sample(names[:i], min(i, rng.randint(0, 2)))
        for parent in parents:
            lines += [f"[{parent}:children]", name]
        lines.append(f"[{name}]")
        lines += [f"h{rng.randint(0, 7)}" for _ in range(rng.randint(0, 3))]
        lines.append(f"[{name}:vars]")
        lines += [f"k{rng.randint(0, 4)}={name}" for _ in range(rng.randint(1, 3))]
        if rng.random() < 0.3:
            lines.append(f"ansible_group_priority={rng.randint(0, 3)}")
    lines += ["[all:vars]", "k0=all", "k5=all"]
    lines += ["[extra]"] + [f"h{i} k{rng.randint(0, 5)}=host" for i in range(0, 8, 3)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_group_graphs(seed: int, tmp_path: Path) -> None:
    """Verified:
    1. For a seeded random group graph (12 groups, up to 2 parents each, vars that
       conflict everywhere, some priorities), Ansible and hvlab resolve alike.
    """
    assert_same_as_ansible(_random_inventory(seed), tmp_path)

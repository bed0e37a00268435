"""hosts.ini parsing: good files become Host records, bad files one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import InventoryError
from harness.inventory import load_inventory, parse_inventory

GOOD = """
# comment
[local]
localhost ansible_connection=local

[qemu]
localhost
lab-x86 ansible_host=192.0.2.10 ansible_user=root ansible_port=2222 hvlab_arch=x86_64

[stratovirt]
lab-arm ansible_host=192.0.2.20 hvlab_arch=aarch64 note="two words"

[lab:children]
qemu
stratovirt

[lab:vars]
stratovirt_path=/usr/bin/stratovirt
"""


def test_good_inventory_becomes_hosts() -> None:
    """A realistic inventory parses into the right records.

    1. Three hosts, in file order.
    2. localhost is a local connection with the testinfra spec local://.
    3. lab-x86 is ssh with user, port and address from its vars.
    4. Child groups propagate: lab-arm is in stratovirt and lab.
    5. [lab:vars] reach members of child groups; quoted values keep spaces.
    """
    hosts = parse_inventory(GOOD)
    assert [h.name for h in hosts] == ["localhost", "lab-x86", "lab-arm"]
    local, x86, arm = hosts
    assert local.connection == "local" and local.testinfra_spec == "local://"
    assert (x86.connection, x86.user, x86.port, x86.address) == ("ssh", "root", 2222, "192.0.2.10")
    assert x86.testinfra_spec == "ssh://root@192.0.2.10:2222"
    assert {"stratovirt", "lab"} <= arm.groups
    assert arm.var("stratovirt_path") == "/usr/bin/stratovirt"
    assert arm.var("note") == "two words"
    assert "qemu" in local.groups and "lab" in local.groups


def test_shipped_hosts_ini_is_valid() -> None:
    """The repository's hosts.ini parses.

    1. It defines localhost as a local connection.
    2. localhost is in the qemu and stratovirt groups.
    """
    hosts = load_inventory(Path(__file__).resolve().parent.parent / "hosts.ini")
    local = next(h for h in hosts if h.name == "localhost")
    assert local.connection == "local"
    assert {"qemu", "stratovirt"} <= local.groups


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("[qemu\nlocalhost\n", 1, "bad section header"),
        ("[qemu]\nlocalhost port\n", 2, "expected key=value"),
        ("[qemu]\nh1 ansible_connection=telnet\n", 2, "ansible_connection='telnet'"),
        ("[qemu]\nh1 ansible_port=99999\n", 2, "is not a port"),
        ("[qemu]\nh1 hvlab_arch=mips\n", 2, "hvlab_arch='mips'"),
        ("[qemu:vars]\nnovalue\n", 2, "expected key=value"),
        ('[qemu]\nh1 note="unterminated\n', 2, "No closing quotation"),
        ("[qemu]\nweb[1:3]\n", 2, "bad host or group name"),
    ],
)
def test_bad_inventory_names_file_and_line(text: str, line: int, words: str) -> None:
    """Each defect gives one line naming the file, the line number and the problem.

    1. parse_inventory raises InventoryError.
    2. The message starts with "<file>:<line>:".
    3. The message names what is wrong.
    4. The message is a single line.
    """
    with pytest.raises(InventoryError) as info:
        parse_inventory(text, "lab.ini")
    message = str(info.value)
    assert message.startswith(f"lab.ini:{line}:")
    assert words in message
    assert "\n" not in message


def test_inventory_structure_errors(tmp_path: Path) -> None:
    """Whole-file problems are named too.

    1. A missing file says "no such inventory file".
    2. A file with no hosts says so.
    3. A children section naming an unknown group is refused.
    """
    with pytest.raises(InventoryError, match="no such inventory file"):
        load_inventory(tmp_path / "missing.ini")
    empty = tmp_path / "empty.ini"
    empty.write_text("# nothing\n")
    with pytest.raises(InventoryError, match="no hosts defined"):
        load_inventory(empty)
    with pytest.raises(InventoryError, match="unknown group 'ghost'"):
        parse_inventory("[a]\nh1\n[b:children]\nghost\n")

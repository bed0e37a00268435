"""Socket chardevs as the command line gives them: ``-chardev socket,...`` and the compat
forms of ``-qmp`` / ``-serial`` (``unix:PATH[,server...]``, ``tcp:HOST:PORT[,...]``).

QEMU 7.2 (chardev/char-socket.c qemu_chr_parse_socket, chardev/char.c
qemu_chr_parse_compat): one of ``path``, ``host``+``port`` or ``fd``; ``server``
defaults to off, so without it QEMU *connects* to the address (QEMU's own Python
launcher listens and lets QEMU connect: ``-chardev socket,id=mon,path=P`` or, with an
inherited socketpair end, ``-chardev socket,id=mon,fd=N``). StratoVirt only listens
("Argument 'server' and 'nowait' are both required"): the profile's
:class:`~simulator.model.profiles.CmdlineRules` says which a product accepts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from simulator.cmdline_values import (
    CmdlineError,
    Endpoint,
    check_server,
    parse_endpoint,
    parse_int,
    split_props,
)
from simulator.model.profiles import CmdlineRules

#: The virtio-serial controllers a virtconsole plugs into.
VIRTIO_SERIAL = frozenset({"virtio-serial-device", "virtio-serial-pci"})


def _server(props: dict[str, str], option: str, rules: CmdlineRules) -> bool:
    """Whether the socket listens; a client socket only where the product has them."""
    server = "server" in props and props["server"] in ("", "on")
    if server or not rules.client_sockets:
        check_server(props, option, rules)
    return server


def socket_chardev(props: dict[str, str], option: str, rules: CmdlineRules) -> Endpoint:
    """``-chardev socket,id=ID,...``'s properties -> the endpoint to listen on, connect
    to or adopt; ``option`` is the option's text (error messages start with it)."""
    path, host, fd = props.get("path"), props.get("host"), props.get("fd")
    if sum(x is not None for x in (path, host, fd)) > 1:
        raise CmdlineError(f"{option}: None or one of 'path', 'fd' or 'host' option required.")
    server = _server(props, option, rules)
    if path is not None:
        ep = parse_endpoint(f"unix:{path}", option)
    elif not rules.client_sockets:
        raise CmdlineError(f"{option}: only 'socket,id=ID,path=PATH,server' is supported")
    elif host is not None:
        if "port" not in props:
            raise CmdlineError(f"{option}: chardev: socket: no port given")
        ep = parse_endpoint(f"tcp:{host}:{props['port']}", option)
    elif fd is not None:
        ep = Endpoint("fd", fd=parse_int(fd, f"{option}: FD number"))
    else:
        raise CmdlineError(f"{option}: Unable to parse FD number ")
    return dataclasses.replace(ep, server=server, label=option)


def compat_socket(text: str, option: str, rules: CmdlineRules) -> Endpoint:
    """``-qmp``/``-serial`` ``unix:PATH[,props]`` or ``tcp:HOST:PORT[,props]``."""
    addr, _, rest = text.partition(",")
    _, props = split_props(rest)
    server = _server(props, option, rules)
    return dataclasses.replace(parse_endpoint(addr, option), server=server, label=option)


def virtio_console(
    devices: list[str], chardevs: Mapping[str, tuple[Endpoint, str | None]], rules: CmdlineRules
) -> tuple[Endpoint, str | None] | None:
    """The chardev (and its logfile) of ``-device virtconsole,chardev=ID``, if one is given.

    StratoVirt machine/src/lib.rs add_virtio_serial_port: the port needs a virtio-serial
    device ("No virtio serial device found") and a chardev not used elsewhere.
    """
    parsed = [(text, *split_props(text, first_key="driver")) for text in devices]
    consoles = [(text, props) for text, driver, props in parsed if driver == "virtconsole"]
    if not consoles:
        return None
    text, props = consoles[0]
    if not any(driver in VIRTIO_SERIAL for _, driver, _ in parsed):
        raise CmdlineError(f"-device {text}: {rules.virtconsole_without_serial}")
    cid = props.get("chardev", "")
    if cid not in chardevs:
        raise CmdlineError(f'-device {text}: Chardev "{cid}" not found or is in use')
    return chardevs[cid]

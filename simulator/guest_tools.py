"""The guest's network tools and file grep, as the hvlab guest's busybox answers them:
``ip addr add A/P dev IF``, ``ip link set IF up|down``, ``ping -i SECS HOST`` (run in
the background: the guest's heartbeat) and ``grep [-i] [-l] [-c] PATTERN FILE...`` with
``*`` in file names. What they set lives in the guest's state (it migrates with it).
"""

from __future__ import annotations

import fnmatch
import ipaddress
from typing import Protocol

from simulator.guest_files import FilesView, list_dir, read_file
from simulator.guest_state import GuestState
from simulator.net.guest_net import Heartbeat

Out = tuple[int, str, str]  # status, stdout, stderr


class ToolsView(FilesView, Protocol):
    @property
    def guest(self) -> GuestState: ...


def _mac_of(v: ToolsView, ifname: str) -> str | None:
    return dict(v.mac_addresses()).get(ifname)


def ip(v: ToolsView, args: list[str]) -> Out:
    """``ip addr add A/P dev IF`` and ``ip link set IF up|down`` (busybox ip)."""
    words = [a for a in args if a]
    if words[:2] in (["addr", "add"], ["a", "add"], ["address", "add"]) and len(words) == 5:
        cidr, dev, ifname = words[2], words[3], words[4]
        mac = _mac_of(v, ifname)
        if dev != "dev" or mac is None:
            return 1, "", f"ip: can't find device '{ifname}'\n"
        try:
            net = ipaddress.IPv4Interface(cidr if "/" in cidr else f"{cidr}/32")
        except ValueError:
            return 1, "", f'ip: an inet prefix is expected rather than "{cidr}"\n'
        if ifname == "lo":
            return 0, "", ""
        cfg = v.guest.net.iface(mac)
        entry = (str(net.ip), net.network.prefixlen)
        if entry in cfg.addrs:
            return 2, "", "ip: RTNETLINK answers: File exists\n"
        cfg.addrs.append(entry)
        return 0, "", ""
    if words[:2] == ["link", "set"] and len(words) == 4 and words[3] in ("up", "down"):
        mac = _mac_of(v, words[2])
        if mac is None:
            return 1, "", f"ip: can't find device '{words[2]}'\n"
        if words[2] != "lo":
            v.guest.net.iface(mac).up = words[3] == "up"
        return 0, "", ""
    return 1, "", "ip: unsupported in the simulated guest\n"


def ping(v: ToolsView, args: list[str]) -> Out:
    """``ping -i SECS HOST``: echo requests to HOST every SECS from now on (the harness
    runs it in the background as the guest's heartbeat; one runs at a time)."""
    interval, host, i = 1.0, "", 0
    while i < len(args):
        if args[i] == "-i" and i + 1 < len(args):
            try:
                interval = float(args[i + 1])
            except ValueError:
                return 1, "", f"ping: invalid number '{args[i + 1]}'\n"
            i += 2
            continue
        if args[i].startswith("-"):
            return 1, "", f"ping: unsupported option {args[i]} in the simulated guest\n"
        host = args[i]
        i += 1
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return 1, "", f"ping: bad address '{host}'\n"
    if not interval > 0:
        return 1, "", f"ping: invalid number '{interval}'\n"
    v.guest.net.heartbeat = Heartbeat(host, interval)
    return 0, "", ""


def expand(v: ToolsView, pattern: str) -> list[str]:
    """A path with ``*``/``?`` in its components, as the shell globs it."""
    paths = ["" if pattern.startswith("/") else "."]
    for part in [p for p in pattern.split("/") if p]:
        nxt = []
        for base in paths:
            if not any(c in part for c in "*?["):
                nxt.append(f"{base}/{part}")
                continue
            names = list_dir(v, base or "/") or []
            nxt += [f"{base}/{n}" for n in names if fnmatch.fnmatchcase(n, part)]
        paths = nxt
    return paths or [pattern]


def grep(v: ToolsView, args: list[str]) -> Out:
    """``grep [-i] [-l] [-c] PATTERN FILE...``: a fixed-string match per line."""
    flags = "".join(a[1:] for a in args if a.startswith("-") and len(a) > 1)
    rest = [a for a in args if not (a.startswith("-") and len(a) > 1)]
    if len(rest) < 2 or set(flags) - set("ilc"):
        return 2, "", "grep: unsupported in the simulated guest\n"
    needle, files = rest[0], [f for pat in rest[1:] for f in expand(v, pat)]

    def fold(text: str) -> str:
        return text.lower() if "i" in flags else text

    out, err, found = [], [], False
    for path in files:
        text = read_file(v, path)
        if text is None:
            err.append(f"grep: {path}: No such file or directory\n")
            continue
        hits = [line for line in text.splitlines() if fold(needle) in fold(line)]
        found = found or bool(hits)
        name = f"{path}:" if len(files) > 1 else ""
        if "l" in flags:
            out += [f"{path}\n"] if hits else []
        elif "c" in flags:
            out.append(f"{name}{len(hits)}\n")
        else:
            out += [f"{name}{line}\n" for line in hits]
    return (0 if found else (2 if err and not out else 1)), "".join(out), "".join(err)

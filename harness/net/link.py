"""Link conditions on an interface of a network namespace (a lab host's, a test's).

Down and up (``ip link``); a rate cap (``tc tbf``: this kernel has no netem, so delay,
loss and corruption come from the fault proxy instead); TCP to or from a port dropped
with nftables, in a table of hvlab's own in that namespace (gone with the namespace).
"""

from __future__ import annotations

import subprocess

from harness.errors import HarnessError

TABLE = "hvlab"


def _table(port: int) -> str:
    """One table per dropped port: two tests dropping ports on one host at once do not
    delete each other's rules."""
    return f"{TABLE}_{port}"


class NetError(HarnessError):
    """A namespace, link or firewall step failed."""


def _run(argv: list[str], data: str | None = None) -> str:
    done = subprocess.run(argv, input=data, capture_output=True, text=True)
    if done.returncode != 0:
        raise NetError(f"{' '.join(argv)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


def _in(netns: str, argv: list[str]) -> list[str]:
    return ["ip", "netns", "exec", netns, *argv]


def down(netns: str, ifname: str) -> None:
    _run(["ip", "-n", netns, "link", "set", ifname, "down"])


def up(netns: str, ifname: str) -> None:
    _run(["ip", "-n", netns, "link", "set", ifname, "up"])


def rate_cap(netns: str, ifname: str, mbit: int) -> None:
    """Cap what ``ifname`` sends to ``mbit`` Mbit/s with a token bucket."""
    _run(_in(netns, ["tc", "qdisc", "replace", "dev", ifname, "root", "tbf", "rate",
                     f"{mbit}mbit", "burst", "32kbit", "latency", "400ms"]))  # fmt: skip


def rate_uncap(netns: str, ifname: str) -> None:
    _run(_in(netns, ["tc", "qdisc", "del", "dev", ifname, "root"]))


def drop_port(netns: str, port: int) -> None:
    """Drop TCP to and from ``port`` in the namespace (input, output and forward)."""
    chains = "".join(
        f" chain {hook} {{ type filter hook {hook} priority 0; policy accept;\n"
        f"  tcp dport {port} drop\n  tcp sport {port} drop\n }}\n"
        for hook in ("input", "output", "forward")
    )
    _run(_in(netns, ["nft", "-f", "-"]), f"table inet {_table(port)} {{\n{chains}}}\n")


def undrop(netns: str, port: int) -> None:
    _run(_in(netns, ["nft", "delete", "table", "inet", _table(port)]))


def _nft_on(runner: object, words: list[str], data: str = "") -> None:
    """nft on a lab host, through its SSH runner (the host's own namespace)."""
    from harness.lab.ssh import SshRunner

    if not isinstance(runner, SshRunner):
        raise NetError("a firewall fault needs a lab host (an ssh runner), not this machine")
    done = runner.run(["nft", *words], data.encode() if data else None)
    if done.returncode != 0:
        raise NetError(f"host {runner.name}: nft {' '.join(words)}: {done.stderr.decode().strip()}")


def drop_port_on(runner: object, port: int) -> None:
    """Drop TCP to and from ``port`` on a lab host (hvlab's own nftables table)."""
    chains = "".join(
        f" chain {hook} {{ type filter hook {hook} priority 0; policy accept;\n"
        f"  tcp dport {port} drop\n  tcp sport {port} drop\n }}\n"
        for hook in ("input", "output")
    )
    _nft_on(runner, ["-f", "-"], f"table inet {_table(port)} {{\n{chains}}}\n")


def undrop_on(runner: object, port: int) -> None:
    _nft_on(runner, ["delete", "table", "inet", _table(port)])

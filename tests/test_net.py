"""The test network's link conditions and the announce arithmetic, for real in a namespace."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from harness.lab.netlab import NetLab
from harness.net import link
from harness.net.wire import AnnounceParams, WireRecord
from harness.waits import wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")

#: from one lab host to the other's sshd; prints ok or the error's name
CONNECT = (
    "import socket\n"
    "try:\n"
    "    socket.create_connection(('{host}', 22), timeout=1).close(); print('ok')\n"
    "except OSError as e:\n"
    "    print(type(e).__name__)\n"
)


def _reach(lab: NetLab, src: int, dst: int) -> str:
    code = CONNECT.format(host=lab.hosts[dst].address)
    argv = ["ip", "netns", "exec", lab.hosts[src].netns, sys.executable, "-c", code]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.strip()


def test_link_conditions_on_the_lab_link() -> None:
    """Down/up, a rate cap and a dropped port on a lab host's link, each undone.

    1. labA reaches labB's sshd over the lab link.
    2. With labB's link down it does not; up again it does.
    3. A tbf rate cap shows on the link and goes again.
    4. With port 22 dropped by nftables in labB (hvlab's own table) it does not; with
       the table deleted it does.
    5. The machine's own nftables never had an hvlab table; the lab leaves nothing.
    """
    lab = NetLab(("labA", "labB")).up()
    b = lab.hosts[1].netns
    try:
        assert _reach(lab, 0, 1) == "ok"
        link.down(b, "lab0")
        assert _reach(lab, 0, 1) != "ok"
        link.up(b, "lab0")
        wait_for(lambda: _reach(lab, 0, 1) == "ok", 10, "the link back up")
        link.rate_cap(b, "lab0", 10)
        shown = subprocess.run(["ip", "netns", "exec", b, "tc", "qdisc", "show", "dev", "lab0"],
                               capture_output=True, text=True).stdout  # fmt: skip
        assert "tbf" in shown and "10Mbit" in shown
        link.rate_uncap(b, "lab0")
        link.drop_port(b, 22)
        assert _reach(lab, 0, 1) != "ok"
        link.undrop(b)
        assert _reach(lab, 0, 1) == "ok"
    finally:
        lab.down()
    assert lab.leftovers() == []
    host_tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True)
    assert "hvlab" not in host_tables.stdout


def test_announce_schedule_follows_net_announce_c() -> None:
    """The expected spacing of the announce rounds (qemu_announce_timer_step).

    1. Defaults (50/550/5/100): 50, 150, 250, 350 ms.
    2. A step past the cap is capped at announce-max.
    3. One round: nothing to space.
    """
    assert AnnounceParams().gaps_ms() == [50, 150, 250, 350]
    assert AnnounceParams(initial=100, max=300, rounds=4, step=200).gaps_ms() == [100, 300, 300]
    assert AnnounceParams(rounds=1).gaps_ms() == []


def test_switchover_gap_is_the_one_around_the_announce() -> None:
    """A pre-copy stall is longer than the switch-over; the analysis still finds the
    switch-over, and counts only losses outside it as losses outside it.

    1. The gap around the first RARP is the switch-over gap, not the longest gap.
    2. Pings lost inside it are not "outside"; one lost later is.
    """
    pings = [(i, i * 0.01, i * 0.01 + 0.001) for i in range(100)]
    pings[20:28] = [(i, i * 0.01, 0.28 + 0.001) for i in range(20, 28)]  # a stall: late
    pings[60:66] = [(i, i * 0.01, None) for i in range(60, 66)]  # the switch-over: lost
    pings[90] = (90, 0.90, None)  # lost on an idle link: a fault
    rec = WireRecord(interval=0.01, pings=pings)
    sw = rec.switchover(at=0.63)
    assert sw.start == pytest.approx(0.591) and sw.end == pytest.approx(0.661)
    assert sw.lost_outside == [90]


def test_arrival_without_announce_is_the_first_frame_from_the_destination() -> None:
    """A product that announces nothing (StratoVirt): the switch-over is found from the
    destination's tap, not from the guest's longest silence (a stall can be longer).

    1. With a RARP captured, the arrival is the first RARP.
    2. Without, it is the first IPv4 frame from the guest's MAC there (a broadcast ARP
       the source's guest sent, flooded to that tap earlier, does not count).
    3. The switch-over gap is the one around it, not the longer stall before.
    """
    mac = "52:54:00:88:00:02"
    frames = [
        {"t": 0.10, "src": mac, "dst": "ff:ff:ff:ff:ff:ff", "kind": "arp"},
        {"t": 0.64, "src": mac.upper(), "dst": "aa:bb:cc:dd:ee:ff", "kind": "ipv4"},
        {"t": 0.70, "src": mac, "dst": "aa:bb:cc:dd:ee:ff", "kind": "ipv4"},
    ]
    pings = [(i, i * 0.01, i * 0.01 + 0.001) for i in range(100)]
    pings[20:28] = [(i, i * 0.01, 0.30 + 0.001) for i in range(20, 28)]  # a longer stall
    pings[60:64] = [(i, i * 0.01, None) for i in range(60, 64)]  # the switch-over
    rec = WireRecord(interval=0.01, pings=pings, frames=frames)
    assert rec.arrival(mac) == 0.64
    rarp = {"t": 0.62, "src": mac, "dst": "ff:ff:ff:ff:ff:ff", "kind": "rarp"}
    assert WireRecord(interval=0.01, frames=[*frames, rarp]).arrival(mac) == 0.62
    sw = rec.switchover(rec.arrival(mac))
    assert sw.start == pytest.approx(0.591) and sw.end == pytest.approx(0.641)
    assert sw.lost_outside == []

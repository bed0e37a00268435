"""The simulated guest's network stack and tools, frame by frame (issue 12; the wire
itself is checked by suites/test_network.py on the sim targets)."""

from __future__ import annotations

from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import ARP, Ether

from simulator.guest_shell import GuestShell
from simulator.guest_state import GuestState
from simulator.net import frames, stack
from simulator.net.guest_net import GuestNet, IfConfig
from tests.test_sim_guest_shell import FakeGuest, out

MAC, HOST_MAC = "52:54:00:88:00:02", "de:ad:be:ef:00:01"
GUEST, HOST = "10.88.0.2", "10.88.0.1"


def configured() -> GuestNet:
    net = GuestNet()
    net.ifaces[MAC] = IfConfig([(GUEST, 24)], up=True)
    return net


def test_rarp_is_qemus_announce_frame() -> None:
    """net/announce.c announce_self_create, byte for byte.

    1. 60 bytes: broadcast, the NIC's MAC, ethertype 0x8035.
    2. htype 1, ptype 0x0800, hlen 6, plen 4, opcode 3 (request reverse).
    3. sender and target hardware address the MAC, protocol addresses zero, zero padding.
    """
    raw = frames.rarp_announce(frames.mac_bytes(MAC))
    mac = bytes.fromhex(MAC.replace(":", ""))
    want = (b"\xff" * 6 + mac + b"\x80\x35" + b"\x00\x01\x08\x00\x06\x04\x00\x03"
            + mac + bytes(4) + mac + bytes(4) + bytes(18))  # fmt: skip
    assert raw == want and len(raw) == 60


def test_arp_and_echo_answered_while_configured() -> None:
    """The host asks for the guest's address and pings it.

    1. ARP who-has GUEST gets is-at MAC, to the asker; the guest learns the asker.
    2. An echo request gets an echo reply with the same id, seq and data, valid
       checksums (scapy recomputes them), from GUEST to HOST.
    3. A UDP datagram to port 7 comes back; other ports get nothing.
    4. Down, or for another address, nothing is answered.
    """
    net = configured()
    ask = bytes(Ether(src=HOST_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(hwsrc=HOST_MAC, psrc=HOST,
                                                                   pdst=GUEST))  # fmt: skip
    (reply,) = stack.answer(net, MAC, ask)
    arp = Ether(reply)[ARP]
    assert (arp.op, arp.hwsrc, arp.psrc, arp.hwdst, arp.pdst) == (2, MAC, GUEST, HOST_MAC, HOST)
    assert net.neighbours[HOST] == HOST_MAC
    ping = Ether(src=HOST_MAC, dst=MAC) / IP(src=HOST, dst=GUEST) / ICMP(id=7, seq=9) / b"hvlab"
    (echo,) = stack.answer(net, MAC, bytes(ping))
    got = Ether(echo)
    assert got[IP].src == GUEST and got[IP].dst == HOST and got[Ether].dst == HOST_MAC
    assert (got[ICMP].type, got[ICMP].id, got[ICMP].seq, got[ICMP].load, got[IP].len) == (
        0, 7, 9, b"hvlab", 33)  # fmt: skip
    assert _valid_checksums(echo)
    udp = Ether(src=HOST_MAC, dst=MAC) / IP(src=HOST, dst=GUEST) / UDP(sport=4000, dport=7) / b"x"
    (back,) = stack.answer(net, MAC, bytes(udp))
    assert Ether(back)[UDP].dport == 4000 and bytes(Ether(back)[UDP].payload)[:1] == b"x"
    other_port = Ether(src=HOST_MAC, dst=MAC) / IP(src=HOST, dst=GUEST) / UDP(dport=9) / b"x"
    assert stack.answer(net, MAC, bytes(other_port)) == []
    net.ifaces[MAC].up = False
    assert stack.answer(net, MAC, ask) == [] and stack.answer(net, MAC, bytes(ping)) == []
    net.ifaces[MAC].up = True
    other = Ether(src=HOST_MAC, dst=MAC) / IP(src=HOST, dst="10.88.0.9") / ICMP()
    assert stack.answer(net, MAC, bytes(other)) == []


def _valid_checksums(raw: bytes) -> bool:
    """scapy recomputes IP and ICMP checksums when they are deleted: equal means valid."""
    pkt = Ether(raw)
    fresh = pkt.copy()
    del fresh[IP].chksum
    del fresh[ICMP].chksum
    rebuilt = Ether(bytes(fresh))
    return bool(rebuilt[IP].chksum == pkt[IP].chksum and rebuilt[ICMP].chksum == pkt[ICMP].chksum)


def test_heartbeat_asks_for_the_host_then_pings() -> None:
    """``ping -i`` from the guest.

    1. While the host's MAC is unknown, an ARP request for it leaves on the NIC.
    2. Once known, echo requests from GUEST to HOST with increasing seq.
    """
    net = configured()
    net.heartbeat = GuestNet.from_json({"heartbeat": [HOST, 0.01, 1, 0]}).heartbeat
    mac, first, asking = stack.heartbeat(net) or ("", b"", False)
    assert mac == MAC and asking and Ether(first)[ARP].pdst == HOST
    net.neighbours[HOST] = HOST_MAC
    seqs = []
    for _ in range(2):
        _, raw, asking = stack.heartbeat(net) or ("", b"", True)
        pkt = Ether(raw)
        assert not asking and pkt[Ether].dst == HOST_MAC and pkt[ICMP].type == 8
        assert pkt[IP].src == GUEST and pkt[IP].dst == HOST and _valid_checksums(raw)
        seqs.append(pkt[ICMP].seq)
    assert seqs == [1, 2]


def test_gratuitous_arp_per_address() -> None:
    """The guest's own announce: an ARP request for each of its addresses, sender and
    target the address, to the broadcast address (what the probe counts as garp)."""
    (raw,) = stack.gratuitous(configured(), MAC)
    arp = Ether(raw)[ARP]
    assert Ether(raw).dst == "ff:ff:ff:ff:ff:ff" and arp.op == 1
    assert arp.psrc == arp.pdst == GUEST and arp.hwsrc == MAC


def test_shell_configures_the_nic_and_starts_the_heartbeat() -> None:
    """What harness/net/guestnet.py types.

    1. grep -il MAC /sys/class/net/*/address names the interface's address file.
    2. ip addr add and ip link set up configure that NIC (by its MAC); a second add of
       the same address fails; an unknown device fails.
    3. The heartbeat, in a background subshell, returns at once with status 0.
    4. The configuration travels in the guest state's JSON.
    """
    guest = FakeGuest(nics=[("lo", "00:00:00:00:00:00"), ("eth0", MAC)])
    shell = GuestShell(guest)
    assert out(shell, f"grep -il {MAC.upper()} /sys/class/net/*/address") == (
        "/sys/class/net/eth0/address\n")  # fmt: skip
    assert out(shell, f"ip addr add {GUEST}/24 dev eth0; echo $?") == "0\n"
    assert out(shell, f"ip addr add {GUEST}/24 dev eth0; echo $?") == (
        "ip: RTNETLINK answers: File exists\n2\n")  # fmt: skip
    assert out(shell, "ip link set eth9 up; echo $?") == "ip: can't find device 'eth9'\n1\n"
    assert out(shell, "ip link set eth0 up; echo $?") == "0\n"
    assert out(shell, f"(ping -i 0.01 {HOST} </dev/null >/dev/null 2>&1 &); echo $?") == "0\n"
    net = guest.guest.net
    assert net.ifaces[MAC] == IfConfig([(GUEST, 24)], up=True)
    assert net.heartbeat is not None and (net.heartbeat.host, net.heartbeat.interval) == (
        HOST, 0.01)  # fmt: skip
    moved = GuestState.from_json(guest.guest.to_json()).net
    assert moved.ifaces == net.ifaces and moved.heartbeat == net.heartbeat

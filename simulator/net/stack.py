"""The simulated guest's network stack on one NIC: ARP for its addresses, ICMP echo, UDP
echo (port 7); its heartbeat's echo requests (after ARP for the host); its gratuitous
ARP when asked to announce itself. Pure: frames in, frames out."""

from __future__ import annotations

import ipaddress

from simulator.net import frames as fr
from simulator.net.guest_net import GuestNet, IfConfig

#: busybox ping's default payload: 56 bytes
PING_DATA = bytes(range(56))


def _ip(raw: bytes) -> str:
    return str(ipaddress.IPv4Address(raw))


def answer(net: GuestNet, mac: str, raw: bytes) -> list[bytes]:
    """What the guest's NIC ``mac`` sends back for frame ``raw``."""
    cfg = net.ifaces.get(mac.lower())
    frame = fr.Frame.parse(raw)
    if cfg is None or not cfg.up or frame is None:
        return []
    me = fr.mac_bytes(mac)
    mine = {fr.ip_bytes(a) for a, _ in cfg.addrs}
    arp = frame.arp()
    if arp is not None:
        op, sha, spa, _, tpa = arp
        if tpa not in mine:
            return []
        net.neighbours[_ip(spa)] = fr.mac_text(sha)  # a request to us updates the cache
        if op != fr.ARP_REQUEST or spa == tpa:
            return []
        return [fr.arp(fr.ARP_REPLY, me, tpa, sha, spa, sha)]
    if frame.dst != me:
        return []
    ip = frame.ip()
    if ip is None or ip[1] not in mine:
        return []
    src, dst, proto, payload = ip
    if proto == fr.IP_ICMP and len(payload) >= 8 and payload[0] == fr.ICMP_ECHO:
        ident, seq = int.from_bytes(payload[4:6], "big"), int.from_bytes(payload[6:8], "big")
        reply = fr.icmp_echo(fr.ICMP_ECHO_REPLY, ident, seq, payload[8:])
        return [fr.ether(frame.src, me, fr.ETH_IP, fr.ipv4(dst, src, fr.IP_ICMP, reply))]
    if proto == fr.IP_UDP and len(payload) >= 8:
        sport, dport = int.from_bytes(payload[0:2], "big"), int.from_bytes(payload[2:4], "big")
        if dport == fr.UDP_ECHO_PORT:
            reply = fr.udp(dport, sport, payload[8:])
            return [fr.ether(frame.src, me, fr.ETH_IP, fr.ipv4(dst, src, fr.IP_UDP, reply))]
    return []


def route(net: GuestNet, host: str) -> tuple[str, IfConfig, str] | None:
    """(MAC, interface, source address) the guest reaches ``host`` through, if any."""
    target = ipaddress.IPv4Address(host)
    for mac, cfg in net.ifaces.items():
        for addr, prefix in cfg.addrs:
            if cfg.up and target in ipaddress.IPv4Network(f"{addr}/{prefix}", strict=False):
                return mac, cfg, addr
    return None


def heartbeat(net: GuestNet) -> tuple[str, bytes, bool] | None:
    """The heartbeat's next frame, the NIC (MAC) it leaves on and whether it is an ARP
    request for the host (its MAC not known yet) rather than an echo request."""
    hb = net.heartbeat
    if hb is None:
        return None
    way = route(net, hb.host)
    if way is None:
        return None
    mac, _, src = way
    me = fr.mac_bytes(mac)
    known = net.neighbours.get(hb.host)
    if known is None:
        ask = fr.arp(fr.ARP_REQUEST, me, fr.ip_bytes(src), bytes(6), fr.ip_bytes(hb.host),
                     fr.BROADCAST)  # fmt: skip
        return mac, ask, True
    hb.seq = (hb.seq + 1) & 0xFFFF
    echo = fr.icmp_echo(fr.ICMP_ECHO, hb.ident, hb.seq, PING_DATA)
    packet = fr.ipv4(fr.ip_bytes(src), fr.ip_bytes(hb.host), fr.IP_ICMP, echo, hb.seq)
    return mac, fr.ether(fr.mac_bytes(known), me, fr.ETH_IP, packet), False


def gratuitous(net: GuestNet, mac: str) -> list[bytes]:
    """The guest's own announce (NETDEV_NOTIFY_PEERS): a gratuitous ARP per address."""
    cfg = net.ifaces.get(mac.lower())
    if cfg is None or not cfg.up:
        return []
    return [fr.gratuitous_arp(fr.mac_bytes(mac), fr.ip_bytes(a)) for a, _ in cfg.addrs]

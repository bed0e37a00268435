"""Ethernet frames the simulated guest and hypervisor send and answer: ARP, RARP, IPv4
with ICMP echo and UDP (struct-packed, as the wire carries them)."""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

ETH_IP = 0x0800
ETH_ARP = 0x0806
ETH_RARP = 0x8035
BROADCAST = b"\xff" * 6
ARP_REQUEST, ARP_REPLY, RARP_REQUEST = 1, 2, 3  # include/net/eth.h ARP_OP_REQUEST_REV = 3
ICMP_ECHO_REPLY, ICMP_ECHO = 0, 8
IP_ICMP, IP_UDP = 1, 17
UDP_ECHO_PORT = 7
_ETH = struct.Struct("!6s6sH")
_ARP = struct.Struct("!HHBBH6s4s6s4s")
_IP = struct.Struct("!BBHHHBBH4s4s")
_ICMP = struct.Struct("!BBHHH")
_UDP = struct.Struct("!HHHH")
MIN_FRAME = 60  # Ethernet's minimum without the FCS


def mac_bytes(mac: str) -> bytes:
    return bytes(int(x, 16) for x in mac.replace("-", ":").split(":"))


def mac_text(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def ip_bytes(ip: str) -> bytes:
    return ipaddress.IPv4Address(ip).packed


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return int(~total & 0xFFFF)


def _pad(frame: bytes) -> bytes:
    return frame + bytes(max(0, MIN_FRAME - len(frame)))


def ether(dst: bytes, src: bytes, kind: int, payload: bytes) -> bytes:
    return _pad(_ETH.pack(dst, src, kind) + payload)


def arp(op: int, sha: bytes, spa: bytes, tha: bytes, tpa: bytes, dst: bytes) -> bytes:
    return ether(dst, sha, ETH_ARP, _ARP.pack(1, ETH_IP, 6, 4, op, sha, spa, tha, tpa))


def rarp_announce(mac: bytes) -> bytes:
    """QEMU 7.2 net/announce.c announce_self_create: a RARP request from the NIC's MAC,
    for itself, protocol addresses zero, padded to 60 bytes."""
    body = _ARP.pack(1, ETH_IP, 6, 4, RARP_REQUEST, mac, bytes(4), mac, bytes(4))
    return ether(BROADCAST, mac, ETH_RARP, body)


def gratuitous_arp(mac: bytes, ip: bytes) -> bytes:
    """Linux devinet.c inetdev_send_gratuitous_arp (arp_send with ARPOP_REQUEST, the
    address as sender and target, target MAC zero, to the broadcast address)."""
    return arp(ARP_REQUEST, mac, ip, bytes(6), ip, BROADCAST)


def ipv4(src: bytes, dst: bytes, proto: int, payload: bytes, ident: int = 0) -> bytes:
    head = _IP.pack(0x45, 0, 20 + len(payload), ident & 0xFFFF, 0x4000, 64, proto, 0, src, dst)
    head = head[:10] + struct.pack("!H", checksum(head)) + head[12:]
    return head + payload


def icmp_echo(kind: int, ident: int, seq: int, data: bytes) -> bytes:
    head = _ICMP.pack(kind, 0, 0, ident, seq)
    return head[:2] + struct.pack("!H", checksum(head + data)) + head[4:] + data


def udp(sport: int, dport: int, data: bytes) -> bytes:
    return _UDP.pack(sport, dport, 8 + len(data), 0) + data  # checksum 0: none (IPv4)


@dataclass(frozen=True)
class Frame:
    """One received frame, parsed as far as the guest's stack cares."""

    dst: bytes
    src: bytes
    kind: int
    payload: bytes

    @classmethod
    def parse(cls, raw: bytes) -> Frame | None:
        if len(raw) < _ETH.size:
            return None
        dst, src, kind = _ETH.unpack_from(raw)
        return cls(dst, src, kind, raw[_ETH.size :])

    def arp(self) -> tuple[int, bytes, bytes, bytes, bytes] | None:
        """(op, sender MAC, sender IP, target MAC, target IP) of an IPv4-over-Ethernet ARP."""
        if self.kind != ETH_ARP or len(self.payload) < _ARP.size:
            return None
        htype, ptype, hlen, plen, op, sha, spa, tha, tpa = _ARP.unpack_from(self.payload)
        if (htype, ptype, hlen, plen) != (1, ETH_IP, 6, 4):
            return None
        return op, sha, spa, tha, tpa

    def ip(self) -> tuple[bytes, bytes, int, bytes] | None:
        """(source, destination, protocol, payload) of an unfragmented IPv4 packet."""
        if self.kind != ETH_IP or len(self.payload) < _IP.size:
            return None
        vihl, _, total, _, frag, _, proto, _, src, dst = _IP.unpack_from(self.payload)
        hlen = (vihl & 0x0F) * 4
        if vihl >> 4 != 4 or frag & 0x3FFF or total < hlen or len(self.payload) < total:
            return None
        return src, dst, proto, self.payload[hlen:total]

"""The host side of a network test, run inside the test's namespace (scapy).

    ip netns exec NS python -m harness.net.probe --out FILE.json [--pcap FILE.pcap]
        [--ping GUEST_IP --interval 0.005] [--heartbeat GUEST_IP] [--capture IFACE ...]

It sends sequence-numbered ICMP echo requests to the guest at a fixed interval and
records each reply; records the guest's own echo requests to the host (its heartbeat);
captures every frame on the ``--capture`` interfaces (the destination's tap: the
self-announce frames) into a pcap. On SIGTERM, SIGINT or EOF on stdin it stops and
writes what it saw as JSON. It prints "ready" once its sniffers run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import struct
import sys
import threading
import time
from typing import Any

from scapy.all import AsyncSniffer, Raw, conf, wrpcap
from scapy.layers.inet import ICMP, IP
from scapy.layers.l2 import ARP, Ether

ETH_RARP = 0x8035
SO_RCVBUFFORCE = 33  # asm-generic/socket.h (root may exceed rmem_max)
SOL_PACKET, PACKET_STATISTICS = 263, 6  # linux/socket.h, linux/if_packet.h
PING_ID = 0x4856  # "HV"


def frame_kind(pkt: Any) -> str:
    """RARP (QEMU's self-announce), a gratuitous ARP (the guest's), ARP, IPv4 or other."""
    if not pkt.haslayer(Ether):
        return "other"
    if pkt[Ether].type == ETH_RARP:
        return "rarp"
    if pkt.haslayer(ARP):
        arp = pkt[ARP]
        return "garp" if arp.psrc == arp.pdst else "arp"
    return "ipv4" if pkt.haslayer(IP) else "other"


class Probe:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.sent: dict[int, float] = {}
        self.replies: dict[int, float] = {}
        self.heartbeats: list[tuple[float, int]] = []
        self.frames: list[Any] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def on_icmp(self, pkt: Any) -> None:
        if not pkt.haslayer(ICMP) or not pkt.haslayer(IP):
            return
        icmp, ip = pkt[ICMP], pkt[IP]
        with self.lock:
            if icmp.type == 0 and icmp.id == PING_ID and ip.src == self.args.ping:
                self.replies.setdefault(int(icmp.seq), float(pkt.time))
            elif icmp.type == 8 and ip.src == self.args.heartbeat:
                self.heartbeats.append((float(pkt.time), int(icmp.seq)))

    def on_frame(self, pkt: Any) -> None:
        """Announce frames are reported as they come (the harness waits on them)."""
        kind = frame_kind(pkt)
        if kind in ("rarp", "garp"):
            line = json.dumps({"kind": kind, "src": pkt[Ether].src, "t": float(pkt.time)})
            with self.lock:
                print(line, flush=True)

    def pinger(self) -> None:
        sock = conf.L3socket()
        seq = 0
        start = time.time()
        try:
            while not self.stop.is_set():
                seq += 1
                pkt = IP(dst=self.args.ping) / ICMP(id=PING_ID, seq=seq & 0xFFFF) / Raw(b"hvlab")
                with self.lock:
                    self.sent[seq & 0xFFFF] = time.time()
                sock.send(pkt)
                # a fixed schedule: the n-th request leaves at start + n * interval
                self.stop.wait(max(0.0, start + seq * self.args.interval - time.time()))
        finally:
            sock.close()

    def run(self) -> int:
        a = self.args
        sockets = {iface: _listen(iface) for iface in [a.bridge, *a.capture]}
        sniffers = [
            AsyncSniffer(
                opened_socket=sockets[a.bridge],
                store=False,
                prn=self.on_icmp,
                lfilter=lambda p: p.haslayer(ICMP),
            )
        ]
        sniffers += [
            AsyncSniffer(opened_socket=sockets[i], store=True, prn=self.on_frame) for i in a.capture
        ]
        for s in sniffers:
            s.start()
        time.sleep(0.3)  # the sniffers' sockets are open
        pinger = threading.Thread(target=self.pinger, daemon=True) if a.ping else None
        if pinger is not None:
            pinger.start()
        print("ready", flush=True)
        threading.Thread(target=self._watch_stdin, daemon=True).start()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop.set())
        self.stop.wait()
        if pinger is not None:
            pinger.join(2)
        self._last_replies(grace=2.0)
        drops = {iface: _drops(sock) for iface, sock in sockets.items()}
        captured: list[Any] = []
        for s in sniffers:
            result = s.stop()
            if result is not None:
                captured.extend(result)
        captured.sort(key=lambda p: float(p.time))
        if a.pcap and captured:
            wrpcap(a.pcap, captured)
        out = {
            "interval": a.interval,
            "capture_drops": drops,
            "pings": [[seq, t, self.replies.get(seq)] for seq, t in sorted(self.sent.items())],
            "heartbeats": self.heartbeats,
            "frames": [
                {"t": float(p.time), "src": p[Ether].src if p.haslayer(Ether) else "",
                 "dst": p[Ether].dst if p.haslayer(Ether) else "", "kind": frame_kind(p)}
                for p in captured
            ],
        }  # fmt: skip
        tmp = a.out + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(out, fh)
        os.replace(tmp, a.out)
        return 0

    def _last_replies(self, grace: float) -> None:
        """Wait (at most ``grace`` s) for the replies to the last requests: on a loaded
        host a reply can take longer than the pinger's interval, and a request without
        one counts as lost."""
        deadline = time.time() + grace
        while time.time() < deadline:
            with self.lock:
                waiting = set(self.sent) - set(self.replies)
                newest = max(self.sent, default=0)
            if not waiting or all(newest - seq > 50 for seq in waiting):
                return  # the rest went unanswered long ago: they are lost, not late
            time.sleep(0.05)

    def _watch_stdin(self) -> None:
        try:
            sys.stdin.read()
        finally:
            self.stop.set()


def _listen(iface: str) -> Any:
    """A packet socket on ``iface`` with a 16 MiB receive buffer: a probe starved of CPU
    for a second while two TCG guests run must not lose the frames it was to count."""
    sock = conf.L2listen(iface=iface)
    sock.ins.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 16 << 20)
    # scapy opens the socket with SO_RCVBUF 0, binds it and flushes what came in before
    # it sets its buffer: a frame that arrived in that window was dropped and counted,
    # though the capture had not begun. Reading PACKET_STATISTICS resets the counters
    # (net/packet/af_packet.c packet_getsockopt: atomic_xchg(&po->tp_drops, 0)), so
    # the drops reported at the end are the capture's own.
    _drops(sock)
    return sock


def _drops(sock: Any) -> int:
    """Frames the kernel dropped on ``sock`` because its buffer was full
    (PACKET_STATISTICS, linux/if_packet.h: tp_packets, tp_drops)."""
    _, dropped = struct.unpack("II", sock.ins.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
    return int(dropped)


def ask(ip: str, bridge: str, count: int) -> dict[str, Any]:
    """Who has ``ip`` (ARP, with scapy), and how many of ``count`` echo requests it answers.

    The requests go out at layer 2 on ``bridge``: to the MAC that answered the ARP, or
    broadcast when none did (a host that has ``ip`` still answers those), so a missing
    guest costs each request its timeout, not scapy's own ARP retries before it."""
    from scapy.all import srp1

    arp = srp1(Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(pdst=ip), iface=bridge, timeout=1, verbose=0)
    mac = arp[ARP].hwsrc if arp is not None else None
    replies = 0
    for seq in range(1, count + 1):
        request = Ether(dst=mac or "ff:ff:ff:ff:ff:ff") / IP(dst=ip) / ICMP(id=PING_ID, seq=seq)
        answer = srp1(request, iface=bridge, timeout=0.5, verbose=0)
        if answer is not None and answer.haslayer(ICMP) and answer[ICMP].type == 0:
            replies += 1
    return {"arp_mac": mac, "echo_replies": replies}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="harness.net.probe")
    p.add_argument("--ask", metavar="IP", help="ARP and ping IP once, print JSON, exit")
    p.add_argument("--count", type=int, default=3)
    p.add_argument("--out", default="")
    p.add_argument("--pcap", default="")
    p.add_argument("--bridge", default="br0")
    p.add_argument("--ping", default="")
    p.add_argument("--interval", type=float, default=0.005)
    p.add_argument("--heartbeat", default="")
    p.add_argument("--capture", action="append", default=[])
    conf.verb = 0
    args = p.parse_args(argv)
    if args.ask:
        print(json.dumps(ask(args.ask, args.bridge, args.count)))
        return 0
    if not args.out:
        p.error("--out is required")
    return Probe(args).run()


if __name__ == "__main__":
    sys.exit(main())

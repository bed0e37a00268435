"""What the wire showed: the probe (harness/net/probe.py) as a context manager, and the
analysis of its record (packet gap, guest heartbeat gap, self-announce frames).

QEMU 7.2's self-announce (net/announce.c): round 1 right away, then rounds 2..R after
``initial + (k-1) * step`` ms each, capped at ``max`` (qemu_announce_timer_step); each
round sends one RARP from every NIC's MAC and, where the guest negotiated
VIRTIO_NET_F_GUEST_ANNOUNCE and a control queue, virtio-net asks the guest to announce
itself (hw/net/virtio-net.c virtio_net_post_load_device: gratuitous ARP from the guest).
The migration calls it once the destination is sure to run (migration/migration.c
process_incoming_migration_bh).
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from harness.errors import HarnessError
from harness.leaks import OWNER_ENV
from harness.net.testnet import TestNet
from harness.waits import scaled, wait_for


@dataclass(frozen=True)
class AnnounceParams:
    """The announce-* migration parameters (qapi/migration.json; 7.2 defaults)."""

    initial: int = 50
    max: int = 550
    rounds: int = 5
    step: int = 100

    def gaps_ms(self) -> list[int]:
        """Expected spacing of the rounds after the first."""
        out = []
        for k in range(1, self.rounds):
            gap = self.initial + (k - 1) * self.step
            out.append(self.max if gap < 0 or gap > self.max else gap)
        return out

    def as_parameters(self) -> dict[str, int]:
        return {
            "announce-initial": self.initial,
            "announce-max": self.max,
            "announce-rounds": self.rounds,
            "announce-step": self.step,
        }


@dataclass(frozen=True)
class Switchover:
    gap: float  # seconds without a reply around the switch-over
    start: float
    end: float
    lost_outside: list[int]  # pings lost outside it (none on an idle link)
    heartbeat_gap: float  # the guest's longest silence overlapping it (its pause)


@dataclass
class WireRecord:
    interval: float
    pings: list[tuple[int, float, float | None]] = field(default_factory=list)
    heartbeats: list[tuple[float, int]] = field(default_factory=list)
    frames: list[dict[str, Any]] = field(default_factory=list)
    capture_drops: dict[str, int] = field(default_factory=dict)  # the kernel's, per iface

    @classmethod
    def load(cls, path: Path) -> WireRecord:
        data = json.loads(path.read_text())
        return cls(
            interval=float(data["interval"]),
            pings=[
                (int(s), float(t), None if r is None else float(r)) for s, t, r in data["pings"]
            ],
            heartbeats=[(float(t), int(s)) for t, s in data["heartbeats"]],
            frames=list(data["frames"]),
            capture_drops={k: int(v) for k, v in data.get("capture_drops", {}).items()},
        )

    # -- gaps --------------------------------------------------------------------------------
    def reply_gap(self) -> tuple[float, float, float]:
        """(longest time without a reply, when it started, when it ended), in seconds.

        Measured between consecutive replies, so a gap is at least one interval."""
        times = sorted(r for _, _, r in self.pings if r is not None)
        return _longest(times)

    def lost(self, start: float | None = None, end: float | None = None) -> list[int]:
        """Pings sent in [start, end) that got no reply."""
        return [
            seq
            for seq, sent, reply in self.pings
            if reply is None and (start is None or sent >= start) and (end is None or sent < end)
        ]

    def heartbeat_gap(self) -> tuple[float, float, float]:
        """The longest silence of the guest's own heartbeat (its pings to the host)."""
        return _longest(sorted(t for t, _ in self.heartbeats))

    def switchover(self, at: float | None = None) -> Switchover:
        """The reply gap of the switch-over: the one around ``at`` (the destination's
        first announce, sent just before it resumes the guest:
        migration.c process_incoming_migration_bh), else the one around the guest's
        longest silence. Under CPU contention a pre-copy round can delay replies for
        longer than the switch-over does, so the longest gap alone is not it."""
        replies = sorted(r for _, _, r in self.pings if r is not None)
        if at is None:
            _, h1, h2 = self.heartbeat_gap()
            at = (h1 + h2) / 2
        start, end = 0.0, 0.0
        for a, b in itertools.pairwise(replies):
            if a <= at <= b:
                start, end = a, b
                break
        # a ping sent shortly before the last reply may still be in flight when the
        # source stops: it belongs to the switch-over too
        rtts = [r - s for _, s, r in self.pings if r is not None and start - 1.0 <= r <= start]
        slack = max(rtts, default=self.interval)
        outside = [
            seq
            for seq, sent, reply in self.pings
            if reply is None and not (start - slack <= sent <= end)
        ]
        beats = sorted(t for t, _ in self.heartbeats)
        pause = max(
            (b - a for a, b in itertools.pairwise(beats) if a <= end and b >= start), default=0.0
        )
        return Switchover(end - start, start, end, outside, pause)

    def arrival(self, mac: str) -> float | None:
        """When the guest showed up on the destination's tap (the capture): its first
        RARP, else (a product that announces nothing) the first IPv4 frame it sent from
        there. Unicast from the source never reaches that tap, so that frame is the
        destination's guest running; under CPU contention a heartbeat stall elsewhere
        can be longer than the switch-over, so the longest silence alone is not it."""
        rarp = self.announces(mac)
        if rarp:
            return rarp[0]
        mac = mac.lower()
        sent = [f["t"] for f in self.frames if f["src"].lower() == mac and f["kind"] == "ipv4"]
        return min(sent, default=None)

    def announces(self, mac: str, kinds: tuple[str, ...] = ("rarp",)) -> list[float]:
        mac = mac.lower()
        return [f["t"] for f in self.frames if f["src"].lower() == mac and f["kind"] in kinds]

    def summary(self, mac: str) -> dict[str, Any]:
        sw = self.switchover(self.arrival(mac))
        return {
            "pings_sent": len(self.pings),
            "pings_lost": len(self.lost()),
            "packet_gap_ms": round(sw.gap * 1000, 1),
            "lost_outside_switchover": sw.lost_outside,
            "guest_pause_ms": round(sw.heartbeat_gap * 1000, 1),
            "longest_reply_gap_ms": round(self.reply_gap()[0] * 1000, 1),
            "rarp": len(self.announces(mac)),
            "garp": len(self.announces(mac, ("garp",))),
            "frames": len(self.frames),
            "capture_drops": self.capture_drops,
        }


def _longest(times: list[float]) -> tuple[float, float, float]:
    best = (0.0, 0.0, 0.0)
    for a, b in itertools.pairwise(times):
        if b - a > best[0]:
            best = (b - a, a, b)
    return best


def spacing_ms(times: list[float]) -> list[float]:
    return [round((b - a) * 1000, 1) for a, b in itertools.pairwise(times)]


def ask(net: TestNet, ip: str, count: int = 3) -> dict[str, Any]:
    """ARP for ``ip`` and ping it ``count`` times from the host side (scapy, in the
    namespace): {"arp_mac": MAC or None, "echo_replies": n}."""
    done = subprocess.run(
        net.exec_argv(
            [sys.executable, "-m", "harness.net.probe", "--ask", ip, "--count", str(count)]
        ),
        capture_output=True,
        text=True,
        timeout=scaled(60),
    )
    if done.returncode != 0:
        raise HarnessError(f"network probe --ask {ip}: {done.stderr.strip()[-300:]}")
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


class WireProbe:
    """Runs the probe in the test's namespace for the ``with`` block; ``record`` after."""

    def __init__(
        self,
        net: TestNet,
        logs: Path,
        owner: str,
        ping: str = "",
        heartbeat: str = "",
        capture: tuple[str, ...] = (),
        interval: float = 0.005,
        name: str = "wire",
    ) -> None:
        logs.mkdir(parents=True, exist_ok=True)
        self.out = logs / f"{name}.json"
        self.pcap = logs / f"{name}.pcap"
        argv = [sys.executable, "-m", "harness.net.probe", "--out", str(self.out),
                "--pcap", str(self.pcap), "--interval", str(interval)]  # fmt: skip
        if ping:
            argv += ["--ping", ping]
        if heartbeat:
            argv += ["--heartbeat", heartbeat]
        for iface in capture:
            argv += ["--capture", iface]
        self.argv = net.exec_argv(argv)
        self.owner = owner
        self._proc: subprocess.Popen[str] | None = None
        self.record: WireRecord | None = None
        self._live: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def __enter__(self) -> WireProbe:
        env = dict(os.environ)
        env[OWNER_ENV] = self.owner
        self._proc = subprocess.Popen(
            self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True,
        )  # fmt: skip
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().strip()
        if line != "ready":
            err = self._proc.stderr.read() if self._proc.stderr else ""
            self._proc.kill()
            raise HarnessError(f"network probe did not start: {line or err.strip()[-300:]}")
        threading.Thread(target=self._follow, daemon=True).start()
        return self

    def _follow(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            try:
                frame = json.loads(line)
            except ValueError:
                continue
            frame["seen"] = time.monotonic()
            with self._lock:
                self._live.append(frame)

    def announced(self, mac: str, kind: str = "rarp") -> list[dict[str, Any]]:
        """Announce frames from ``mac`` seen so far (while the probe runs)."""
        with self._lock:
            return [f for f in self._live if f["kind"] == kind and f["src"].lower() == mac.lower()]

    def wait_announces(self, mac: str, count: int, quiet: float, timeout: float) -> None:
        """Until ``count`` RARPs from ``mac`` came and then nothing more for ``quiet`` s
        (a round too many would come within the schedule's longest step)."""
        since = time.monotonic()
        if count:
            wait_for(lambda: len(self.announced(mac)) >= count or None, timeout, f"{count} RARPs")

        def quiet_now() -> bool:
            with self._lock:
                last = max((f["seen"] for f in self._live), default=since)
            return time.monotonic() - max(last, since) >= quiet

        wait_for(quiet_now, timeout, "the announce rounds to end")

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        proc = self._proc
        if proc is None:
            return
        assert proc.stdin is not None
        proc.stdin.close()  # the probe stops and writes its record
        try:
            proc.wait(scaled(30))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if et is None:
            if not self.out.exists():
                err = proc.stderr.read() if proc.stderr else ""
                raise HarnessError(f"network probe wrote no record: {err.strip()[-300:]}")
            self.record = WireRecord.load(self.out)

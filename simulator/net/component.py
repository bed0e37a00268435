"""The process's network: its taps, what the guest's NICs answer on them, the guest's
heartbeat, and the self-announce after an incoming migration.

Taps open when the command line or ``netdev_add`` names one (``ifname=``) and close
when the netdev goes (``netdev_del``, or a ``device_del`` that takes its backend). A
NIC (virtio-net with its MAC) answers on its netdev's tap while the VM runs; a stopped
VM (paused, the switch-over, an incoming migration not done yet, postmigrate) answers
nothing and sends nothing.

Self-announce (QEMU 7.2 migration/migration.c process_incoming_migration_bh ->
net/announce.c qemu_announce_self, just before the destination resumes): where the
profile has it, one RARP per NIC per round, rounds after ``announce-initial +
(k-1) * announce-step`` ms (at most ``announce-max``) from the destination's migration
parameters; where the NIC offers VIRTIO_NET_F_GUEST_ANNOUNCE (hw/net/virtio-net.c
virtio_net_post_load_device), the guest also announces itself each round, once it runs
(a gratuitous ARP per address). StratoVirt does neither.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Protocol

from simulator.errors import Fatal
from simulator.model import DeviceClass, Profile, QmpError
from simulator.model.errors import ErrorClass, Event
from simulator.model.migration.params import MigrationParameters
from simulator.model.vm import VM
from simulator.net import frames, stack
from simulator.net.guest_net import GuestNet
from simulator.net.tap import Tap, TapError

JSON = dict[str, Any]
NICS = (DeviceClass.NET, DeviceClass.VHOST_NET, DeviceClass.VHOST_USER_NET)
#: Wall seconds between two looks for a heartbeat to start.
IDLE_S = 0.05
#: Seconds between ARP requests for an unresolved heartbeat host (Linux retrans_time).
ARP_RETRY_S = 1.0


class NetView(Protocol):
    """The process as its network sees it (SimProcess provides it)."""

    profile: Profile
    vm: VM

    @property
    def net(self) -> GuestNet: ...

    @property
    def time_scale(self) -> float: ...

    def tick(self) -> None: ...


class Network:
    def __init__(self, proc: NetView, taps: dict[str, str]) -> None:
        self.proc = proc
        self.wanted = taps  # netdev id -> ifname, from the command line
        self.taps: dict[str, Tap] = {}  # by ifname
        self._tasks: list[asyncio.Task[None]] = []
        self._timers: list[asyncio.TimerHandle] = []
        self._arp_at = -ARP_RETRY_S
        self._arrived = asyncio.Event()  # the guest came in: its heartbeat runs on at once

    # ------------------------------------------------------------ taps
    def start(self) -> None:
        """Open the command line's taps (the product exits if one cannot be opened)."""
        for ifname in self.wanted.values():
            try:
                self._open(ifname)
            except TapError as exc:
                raise Fatal(self._tap_error(ifname, exc)) from None
        self._tasks.append(asyncio.get_running_loop().create_task(self._heartbeat()))

    def _tap_error(self, ifname: str, exc: TapError) -> str:
        return self.proc.profile.tap_error.format(
            ifname=ifname, strerror=exc.strerror, errno=exc.errno
        )

    def _open(self, ifname: str) -> None:
        if ifname in self.taps:
            return
        tap = Tap.open(ifname)
        tap.listen(lambda raw: self._received(tap, raw))
        self.taps[ifname] = tap

    def intercept(self, cmd: str, args: JSON) -> tuple[Any, list[Event]] | None:
        """netdev_add of a tap opens it first: a tap that cannot be opened is the reply."""
        ifname = args.get("ifname")
        if cmd != "netdev_add" or not isinstance(ifname, str) or not ifname:
            return None
        if args.get("type", "tap") != "tap" or ifname in self.taps:
            return None
        try:
            self._open(ifname)
        except TapError as exc:
            return QmpError(ErrorClass.GENERIC_ERROR, self._tap_error(ifname, exc)), []
        return None

    def sync(self) -> None:
        """Close the taps whose netdev is gone."""
        vm = getattr(self.proc, "vm", None)
        if vm is None:
            return
        kept = {n for n in vm.table.netdevs.values() if n}
        for ifname in [n for n in self.taps if n not in kept]:
            self.taps.pop(ifname).close()

    def _nics(self) -> dict[str, str]:
        """Tap name -> the MAC of the NIC on it."""
        vm = self.proc.vm
        out = {}
        for d in vm.table.devices.values():
            if d.cls in NICS and d.mac:
                ifname = vm.table.netdevs.get(d.backend or "") or vm.table.netdevs.get(d.id)
                if ifname:
                    out[ifname] = d.mac.lower()
        return out

    # ------------------------------------------------------------ frames
    def _received(self, tap: Tap, raw: bytes) -> None:
        proc = self.proc
        proc.tick()
        if not proc.vm.running:
            return  # a stopped guest answers nothing
        mac = self._nics().get(tap.name)
        if mac is not None:
            for reply in stack.answer(proc.net, mac, raw):
                tap.send(reply)

    def _send_from(self, mac: str, frame: bytes) -> None:
        for ifname, nic in self._nics().items():
            tap = self.taps.get(ifname)
            if nic == mac and tap is not None:
                tap.send(frame)

    async def _heartbeat(self) -> None:
        """The guest's ``ping -i INTERVAL HOST``: one echo request per interval of guest
        time while the VM runs (ARP for the host first), on a fixed schedule (as ping's
        interval timer: a late one does not push the later ones back)."""
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            hb = self.proc.net.heartbeat
            if hb is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._arrived.wait(), IDLE_S)
                self._arrived.clear()
                due = loop.time()
                continue
            self.proc.tick()
            out = stack.heartbeat(self.proc.net) if self.proc.vm.running else None
            if out is not None:
                mac, frame, asking = out
                if not asking or loop.time() - self._arp_at >= ARP_RETRY_S:
                    self._arp_at = loop.time() if asking else self._arp_at
                    self._send_from(mac, frame)
            step = max(hb.interval, 0.001) / self.proc.time_scale
            due = max(due + step, loop.time() - step)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), max(0.0, due - loop.time()))
            if self._arrived.is_set():  # a guest came in: its heartbeat goes on at once
                self._arrived.clear()
                due = loop.time()

    # ------------------------------------------------------------ self-announce
    def arrived(self) -> None:
        """The incoming migration is done and the destination is about to run the guest:
        the profile's self-announce starts (QEMU 7.2 qemu_announce_self: round 1 now)."""
        self._arrived.set()
        prof, params = self.proc.profile, self.proc.vm.params
        if not (prof.self_announce or prof.guest_announce) or params.announce_rounds <= 0:
            return
        self._announce_round(params, params.announce_rounds)

    def _announce_round(self, params: MigrationParameters, left: int) -> None:
        """One round; the next one ``initial + (k-1) * step`` ms (at most ``max``) after
        this one ran (qemu_announce_self_once, qemu_announce_timer_step), with the
        parameters as they were when it started (qemu_announce_timer_reset clones them)."""
        prof = self.proc.profile
        for ifname, mac in self._nics().items():
            tap = self.taps.get(ifname)
            if tap is None:
                continue
            if prof.self_announce:
                tap.send(frames.rarp_announce(frames.mac_bytes(mac)))
            if prof.guest_announce:
                self._guest_announce(tap, mac)
        left -= 1
        if left > 0:
            step = params.announce_initial + (params.announce_rounds - left - 1) * (
                params.announce_step
            )
            if step < 0 or step > params.announce_max:
                step = params.announce_max
            loop = asyncio.get_running_loop()
            wait = step / 1000 / self.proc.time_scale
            self._timers.append(loop.call_later(wait, self._announce_round, params, left))

    def _guest_announce(self, tap: Tap, mac: str) -> None:
        """virtio-net asks the guest (VIRTIO_NET_S_ANNOUNCE); it answers once it runs."""
        self.proc.tick()
        if not self.proc.vm.alive:
            return
        if not self.proc.vm.running:
            loop = asyncio.get_running_loop()
            self._timers.append(loop.call_later(0.01, self._guest_announce, tap, mac))
            return
        for frame in stack.gratuitous(self.proc.net, mac):
            tap.send(frame)

    # ------------------------------------------------------------ end
    def close(self) -> None:
        for timer in self._timers:
            timer.cancel()
        for task in self._tasks:
            task.cancel()
        for tap in self.taps.values():
            with contextlib.suppress(OSError):
                tap.close()
        self.taps.clear()

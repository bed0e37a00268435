"""The network on the wire: self-announce, packet-level downtime, NIC hotplug (scapy).

Each test makes its own network namespace with a bridge (harness/net/testnet.py); the
VMs run in it, their NICs on taps on that bridge, the host side at 10.88.0.1. Nothing
touches the machine's own network.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator

import pytest

from harness import hotplug, migration
from harness.fixtures import VMFactory
from harness.machine import Machine
from harness.migration import Transport, incoming_uri
from harness.net import guestnet
from harness.net.testnet import HOST_ADDRESS, TestNet
from harness.net.wire import AnnounceParams, WireProbe, ask, spacing_ms
from harness.spec import DeviceSpec, TapNetdev, VMSpec
from suites.catalog import Expect
from suites.claims_network import Announce
from suites.vmpair import migration_capabilities, tuning

MAC = "52:54:00:88:00:02"
CHANGED = AnnounceParams(initial=100, max=300, rounds=3, step=200)
#: how far late a round may come on a loaded 2-core machine (timers never come early)
LATE_MS = 250
#: spacing is read from capture times: a round captured late makes the next gap that
#: much shorter, though QEMU's timer was not early
EARLY_MS = 15


@pytest.fixture
def net(vms: VMFactory) -> Iterator[TestNet]:
    """A network namespace of this test's own (deleted afterwards)."""
    testnet = TestNet().up()
    yield testnet
    testnet.down()


def nic_spec(spec: VMSpec, tap: str, mac: str = MAC) -> VMSpec:
    """``spec`` with one virtio-net NIC on tap ``tap``."""
    nic = DeviceSpec("virtio-net-pci", "nic0", (("netdev", "net0"), ("mac", mac)))
    return dataclasses.replace(spec, taps=(TapNetdev("net0", tap),), devices=(*spec.devices, nic))


def networked_pair(
    vms: VMFactory, net: TestNet, spec: VMSpec, announce: AnnounceParams | None
) -> tuple[Machine, Machine, str]:
    """A source with a configured NIC and heartbeat, and a destination listening on tcp,
    both in ``net``; the destination has the announce parameters (it is the side that
    announces)."""
    address = net.guest_address()
    src = vms.launch(nic_spec(spec, "tap-src"), "src", netns=net.name)
    net.attach("tap-src")
    guestnet.configure(src, MAC, address)
    guestnet.start_heartbeat(src, HOST_ADDRESS)
    incoming = incoming_uri(Transport.TCP, vms.target.traits)
    dst = vms.launch(
        dataclasses.replace(nic_spec(spec, "tap-dst"), incoming=incoming),
        "dst",
        wait_guest=False,
        netns=net.name,
    )
    net.attach("tap-dst")
    if announce is not None and vms.target.traits.migration_tuning:
        dst.qmp.execute("migrate-set-parameters", announce.as_parameters())
    return src, dst, address


@pytest.mark.parametrize("announce", [None, CHANGED], ids=["default-announce", "changed-announce"])
@pytest.mark.catalog("NET-ANNOUNCE", "NET-GAP")
def test_announce_and_packet_gap(
    vms: VMFactory,
    net: TestNet,
    standard_spec: VMSpec,
    announce: AnnounceParams | None,
    expect: Callable[[str], Expect],
) -> None:
    """After the switch-over the destination announces the guest; the gap is measured.

    1. The guest answers pings on the source before the migration.
    2. The migration completes; the destination runs.
    3. On the destination's tap: RARP frames from the guest's MAC, as many as the
       announce rounds in force, spaced as net/announce.c schedules them (to the
       capture's precision);
       none where the catalog says the product sends none (StratoVirt).
    4. The guest itself announced (gratuitous ARP from its MAC) exactly where it could
       negotiate VIRTIO_NET_F_GUEST_ANNOUNCE (the catalog says where).
    5. The gap in echo replies around the switch-over covers at least QEMU's reported
       downtime.
    6. No ping was lost outside that gap (an idle link), counted by a capture that
       dropped no frame.
    7. The guest answers pings on the destination afterwards.
    """
    params = announce or AnnounceParams()
    documented: Announce = expect("NET-ANNOUNCE").value
    if announce is not None and not vms.target.traits.migration_tuning:
        pytest.skip(f"{vms.target.name} has no announce parameters (no migrate-set-parameters)")
    want = params.rounds if announce is not None else documented.rarp
    src, dst, address = networked_pair(vms, net, standard_spec, announce)
    assert ask(net, address)["echo_replies"] == 3
    logs = vms.artifacts / "net"
    with WireProbe(net, logs, vms.owner, ping=address, heartbeat=address,
                   capture=("tap-dst",)) as probe:  # fmt: skip
        watch = migration.start(
            src,
            migration.destination_uri(dst, Transport.TCP),
            parameters=tuning(vms, **{"max-bandwidth": 1 << 30}),
            capabilities=migration_capabilities(vms),
        )
        result = migration.finish(watch, dst, timeout=180)
        assert result.status == "completed" and result.dst_runstate == "running"
        settle = sum(params.gaps_ms()) / 1000 + 10.0
        probe.wait_announces(MAC, want, params.max / 1000 + 0.3, settle)
    record = probe.record
    assert record is not None
    rarp = record.announces(MAC)
    summary = {
        **record.summary(MAC),
        "qemu_downtime_ms": result.final.get("downtime"),
        "rarp_spacing_ms": spacing_ms(rarp),
        "expected_spacing_ms": params.gaps_ms(),
    }
    (logs / "summary.json").write_text(json.dumps(summary, indent=1))
    assert len(rarp) == want, summary
    for got, expected in zip(spacing_ms(rarp), params.gaps_ms()[: max(0, want - 1)], strict=True):
        assert expected - EARLY_MS <= got <= expected + LATE_MS, summary
    assert bool(record.announces(MAC, ("garp",))) is documented.guest, summary
    switch = record.switchover(record.arrival(MAC))
    downtime_s = float(result.final.get("downtime", 0)) / 1000
    assert switch.gap >= downtime_s, summary
    # a loss counted by a capture that dropped frames is the probe's, not the link's
    assert not any(record.capture_drops.values()), f"the capture dropped frames: {summary}"
    assert switch.lost_outside == [], summary
    assert ask(net, address)["echo_replies"] == 3


@pytest.mark.catalog("NET-NIC-HOTPLUG")
def test_nic_hotplug_on_the_wire(vms: VMFactory, net: TestNet, standard_spec: VMSpec) -> None:
    """A hot-added NIC is on the wire with the MAC and address it was given; an unplugged
    one is not.

    1. netdev_add (tap) and device_add of virtio-net-pci into root port pcie.1 return {}.
    2. Once the guest configured it, ARP for its address is answered by its MAC and it
       answers pings.
    3. After device_del (DEVICE_DELETED), ARP and pings get no answer.
    """
    spec = dataclasses.replace(standard_spec, devices=hotplug.root_ports(1))
    vm = vms.launch(spec, "vm", netns=net.name)
    mac, address = "52:54:00:88:00:10", net.guest_address()
    assert hotplug.add_nic_backend(vm, "hnet0", tap="tap-hot") == {}
    assert hotplug.add_nic(vm, "hnic0", "hnet0", mac, "pcie.1") == {}
    net.attach("tap-hot")
    guestnet.configure(vm, mac, address)
    answer = ask(net, address)
    assert answer == {"arp_mac": mac, "echo_replies": 3}, answer
    hotplug.unplug(vm, "hnic0")
    net.ip("neigh", "flush", "dev", "br0")
    assert ask(net, address) == {"arp_mac": None, "echo_replies": 0}

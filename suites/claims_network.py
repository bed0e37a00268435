"""The network claims: what a migrated guest looks like on the wire, NIC hotplug on it.

The seeds say nothing about the wire beyond "mac must match" (S003 Limitations); QEMU
documents its announce parameters (qapi/migration.json MigrationParameters announce-*)
and implements them in net/announce.c; StratoVirt's behaviour is read from its source.
"""

from __future__ import annotations

from dataclasses import dataclass

from suites.claim import NA, Claim, Expect, H, Verdict


@dataclass(frozen=True)
class Announce:
    """What the destination puts on the wire for a migrated guest, with default settings:
    RARP frames from the NIC's MAC, and whether the guest is made to announce itself."""

    rarp: int
    guest: bool


#: StratoVirt announces nothing: no RARP code anywhere, and its virtio-net offers
#: VIRTIO_NET_F_CTRL_VQ but not VIRTIO_NET_F_GUEST_ANNOUNCE (virtio/src/device/net.rs
#: feature list; no VIRTIO_NET_S_ANNOUNCE, no migration resume hook for net), at v2.4.0
#: and at 2.5 alike; vhost-user's SendRarp is an unused enum value.
STRATOVIRT_SILENT = Expect(
    Verdict.HOLDS,
    Announce(rarp=0, guest=False),
    "virtio/src/device/net.rs: no GUEST_ANNOUNCE feature, no RARP: the wire shows nothing",
)

QAPI = "QEMU qapi/migration.json (MigrationParameters announce-initial/max/rounds/step)"
S004 = "004_4935a8ebb2e196c7.txt (openEuler StratoVirt guide, 管理虚拟机)"
DOCS_SILENT = NA("the StratoVirt documents say nothing about the wire after a migration")

NETWORK_CLAIMS = [
    Claim(
        "NET-ANNOUNCE",
        QAPI,
        "announce-rounds",
        "After the switch-over the destination sends announce-rounds RARP frames from each "
        "NIC's MAC, spaced announce-initial + k x announce-step ms (at most announce-max), "
        "and asks a guest that negotiated VIRTIO_NET_F_GUEST_ANNOUNCE to announce itself",
        doc_value=Announce(rarp=5, guest=True),
        expect={
            # net/announce.c qemu_announce_self (defaults: 5 rounds) and
            # hw/net/virtio-net.c virtio_net_post_load_device (the guest's own announce)
            "qemu": H(Announce(rarp=5, guest=True)),
            "stratovirt-doc": DOCS_SILENT,
            "stratovirt-2.4": STRATOVIRT_SILENT,
            "stratovirt-2.5": STRATOVIRT_SILENT,
        },
    ),
    Claim(
        "NET-GAP",
        QAPI,
        "downtime-limit",
        "Reachability: the guest stops answering only during the switch-over; the gap in "
        "replies covers at least the reported downtime and no packet is lost outside it",
        expect={"stratovirt-doc": DOCS_SILENT},
    ),
    Claim(
        "NET-NIC-HOTPLUG",
        S004,
        "热插网卡",
        "A hot-plugged NIC is on the wire with its MAC and address; after unplug it is not",
    ),
]

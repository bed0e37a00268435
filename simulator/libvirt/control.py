"""Host control of the model: the :class:`HostControl` of simulated hosts.

The model's counterpart of harness.libvirt.control.RealControl: a scenario's
environment (TLS credentials, ``migrate_tls_force``, a shared host UUID) becomes the
simulated hosts' :class:`HostProfile`, the destination disk image a file entry.
"""

from __future__ import annotations

from dataclasses import replace

from simulator.libvirt.hosts import get_host
from simulator.libvirt.scenario import CERT_NAMES, IMAGE, Env
from simulator.libvirt.session import Uris

SIM_SRC = "sim+qemu:///system?host=src&socket=/sim/src"
SIM_DST = "sim+qemu:///system?host=dst&socket=/sim/dst"
SIM_DST_P2P = "sim+qemu://dst/system"
SIM_SRC_P2P = "sim+qemu://src/system"

SIM_URIS = Uris(
    src=SIM_SRC,
    dst=SIM_DST,
    dst_p2p=SIM_DST_P2P,
    src_p2p=SIM_SRC_P2P,
    localhost="sim+qemu://localhost/system",
    no_server="sim+qemu:///system",
    unreachable="sim+qemu://127.0.0.1:9/system",
)


class ModelControl:
    """Environment of the simulated pair (hosts ``src`` and ``dst``)."""

    uris = SIM_URIS

    def __init__(self) -> None:
        self.src, self.dst = get_host("src"), get_host("dst")
        self.dst_uuid = self.dst.profile.host_uuid
        self.src.files.add(IMAGE)
        self.dst.files.add(IMAGE)

    def apply_env(self, env: Env) -> bool:
        self.src.profile = replace(self.src.profile, tls_configured=env.src_certs)
        self.dst.profile = replace(
            self.dst.profile,
            tls_configured=env.dst_certs,
            tls_names=frozenset(CERT_NAMES),
            tls_force=env.dst_tls_force,
            host_uuid=self.src.profile.host_uuid if env.same_host_uuid else self.dst_uuid,
        )
        return False

    def hold_jobs(self, on: bool) -> None:
        """While on, a migration job stays visible after its transfer (Finish/Confirm)
        until turned off: the model's counterpart of the moments a real job lasts."""
        for host in (self.src, self.dst):
            host.hold_jobs = on
            if not on:
                for rec in list(host.domains.values()):
                    if rec.job is not None and rec.job.finishing:
                        rec.job.decide("release")

    def set_dest_image(self, present: bool) -> None:
        if present:
            self.dst.files.add(IMAGE)
        else:
            self.dst.files.discard(IMAGE)

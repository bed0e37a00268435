"""Host control of the real daemon pair: what a scenario's environment changes.

:class:`RealControl` is the :class:`simulator.libvirt.session.HostControl` of two
private libvirtd 9.0 daemons (:mod:`harness.libvirt.daemon`): it writes the scenario
disk image and the busy guest's RAM blob, puts migration TLS credentials in or takes
them out of each daemon's ``migrate_tls_x509_cert_dir``, and restarts the destination
daemon when its qemu.conf (``migrate_tls_force``) or host UUID must change.
:func:`real_session` yields a :class:`Session` on a fresh pair.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from harness.libvirt.certs import FILES, write_credentials
from harness.libvirt.daemon import LibvirtDaemon, daemon_pair
from simulator.libvirt.scenario import BUSY_BLOB, BUSY_MIB, IMAGE, Env
from simulator.libvirt.session import Session, Uris

IMAGE_BYTES = 1 << 20


class RealControl:
    """Environment of a real daemon pair, changed as scenarios ask."""

    def __init__(self, src: LibvirtDaemon, dst: LibvirtDaemon, creds: Path) -> None:
        self.src, self.dst, self.creds = src, dst, creds
        self.dst_uuid = dst.host_uuid  # its own, restored after a shared-UUID scenario
        self.env = Env()
        self._blob = os.urandom(BUSY_MIB << 20)
        self.uris = self._uris()
        for host in (src, dst):
            self._populate(host)

    def _uris(self) -> Uris:
        port = self.dst.port_min + 64
        return Uris(
            src=self.src.uri,
            dst=self.dst.uri,
            dst_p2p=self.dst.p2p_uri,
            src_p2p=self.src.p2p_uri,
            localhost=f"qemu+tcp://localhost:{port}/system",
            no_server="qemu:///system",
            unreachable="qemu+tcp://127.0.0.1:9/system",
        )

    def _populate(self, host: LibvirtDaemon) -> None:
        (host.images / Path(BUSY_BLOB).name).write_bytes(self._blob)
        with (host.images / Path(IMAGE).name).open("wb") as img:
            img.truncate(IMAGE_BYTES)

    def _certs(self, host: LibvirtDaemon, present: bool) -> None:
        for name in FILES:
            target = host.pki / name
            if present:
                shutil.copyfile(self.creds / name, target)
                os.chmod(target, 0o600)
            else:
                target.unlink(missing_ok=True)

    def apply_env(self, env: Env) -> bool:
        restart = (env.dst_tls_force, env.same_host_uuid) != (
            self.env.dst_tls_force,
            self.env.same_host_uuid,
        )
        if restart:
            self.dst.stop()
            self.dst.tls_force = env.dst_tls_force
            self.dst.host_uuid = self.src.host_uuid if env.same_host_uuid else self.dst_uuid
            self.dst.start(net_of=self.src)
            self._populate(self.dst)
            self.uris = self._uris()
        self._certs(self.src, env.src_certs)
        self._certs(self.dst, env.dst_certs)
        self.env = env
        return restart

    def hold_jobs(self, on: bool) -> None:
        """Nothing to do: a real job lasts through Finish and Confirm by itself."""

    def set_dest_image(self, present: bool) -> None:
        image = self.dst.images / Path(IMAGE).name
        if present and not image.exists():
            with image.open("wb") as img:
                img.truncate(IMAGE_BYTES)
        elif not present:
            image.unlink(missing_ok=True)


@contextlib.contextmanager
def real_session() -> Iterator[Session]:
    """A :class:`Session` on a fresh private daemon pair, torn down on exit."""
    import libvirt

    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    creds = Path(tempfile.mkdtemp(prefix="hvlab-libvirt-pki-"))
    try:
        write_credentials(creds)
        with daemon_pair() as (src, dst):
            session = Session(libvirt, RealControl(src, dst, creds))
            try:
                yield session
            finally:
                session.close()
    finally:
        shutil.rmtree(creds, ignore_errors=True)

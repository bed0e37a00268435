"""qemuMigrationParamsFromFlags (src/qemu/qemu_migration_params.c): the typed tuning
parameters each side of a migration reads, in libvirt 9.0's order."""

from __future__ import annotations

import enum

from simulator.libvirt.errors import ErrorDomain, ErrorNumber, Refusal, refuse
from simulator.libvirt.flags import MigrateFlag as F
from simulator.libvirt.request import MigrationCall

E = ErrorNumber


def _qemu_err(code: ErrorNumber, msg: str) -> Refusal:
    return refuse(code, ErrorDomain.QEMU, msg)


class Party(enum.Flag):
    """qemuMigrationParty: which side of the migration reads a typed parameter."""

    SOURCE = enum.auto()
    DESTINATION = enum.auto()


BOTH = Party.SOURCE | Party.DESTINATION

#: qemuMigrationParamsTPMap (qemu_migration_params.c): the side that reads each
#: tuning parameter. auto_converge.* are read by the source only, so a bad one
#: surfaces in Perform, after the destination's Prepare succeeded.
PARAM_PARTY: dict[str, Party] = {
    "auto_converge.initial": Party.SOURCE,
    "auto_converge.increment": Party.SOURCE,
    "compression.mt.level": BOTH,
    "compression.mt.threads": BOTH,
    "compression.mt.dthreads": BOTH,
    "compression.xbzrle.cache": BOTH,
    "bandwidth.postcopy": BOTH,
    "parallel.connections": BOTH,
    "tls.destination": Party.SOURCE,
}

#: bandwidth.postcopy is in MiB/s and scaled to bytes: ULLONG_MAX / 1 MiB at most.
POSTCOPY_BW_MAX = ((1 << 64) - 1) >> 20

#: qemuMigrationCompressMethod names accepted in VIR_MIGRATE_PARAM_COMPRESSION.
COMPRESS_METHODS = ("xbzrle", "mt")


def check_params_from_flags(call: MigrationCall, party: Party) -> Refusal | None:
    """qemuMigrationParamsFromFlags(params, flags, party), in its order.

    1. auto_converge.* without VIR_MIGRATE_AUTO_CONVERGE;
    2. parallel.connections without VIR_MIGRATE_PARALLEL;
    3. qemuMigrationParamsSetCompression: every ``compression`` value must name a
       method; compression.mt.* needs method "mt", compression.xbzrle.cache needs
       "xbzrle". A compression method *without* VIR_MIGRATE_COMPRESSED is fine:
       the parameter itself turns compression on (measured on 9.0).
    """
    flags = call.flags
    read = {n for n in call.params if PARAM_PARTY.get(n, Party(0)) & party}
    # qemuMigrationParamsGetTPULL: a parameter with a unit must fit after scaling.
    postcopy_bw = call.params.get("bandwidth.postcopy")
    if "bandwidth.postcopy" in read and int(postcopy_bw) > POSTCOPY_BW_MAX:  # type: ignore[call-overload]
        return _qemu_err(
            E.OVERFLOW,
            "numerical overflow: migration parameter 'bandwidth.postcopy' must be less than "
            f"{POSTCOPY_BW_MAX + 1}",
        )
    if read & {"auto_converge.initial", "auto_converge.increment"} and not flags & F.AUTO_CONVERGE:
        return _qemu_err(E.INVALID_ARG, "invalid argument: Turn auto convergence on to tune it")
    if "parallel.connections" in read and not flags & F.PARALLEL:
        return _qemu_err(E.INVALID_ARG, "invalid argument: Turn parallel migration on to tune it")
    methods = compression_methods(call)
    for i, method in enumerate(methods):
        if method not in COMPRESS_METHODS:
            return _qemu_err(
                E.INVALID_ARG, f"invalid argument: Unsupported compression method '{method}'"
            )
        if method in methods[:i]:
            return _qemu_err(
                E.INVALID_ARG, f"invalid argument: Compression method '{method}' is specified twice"
            )
    if read & {"compression.mt.level", "compression.mt.threads", "compression.mt.dthreads"} and (
        "mt" not in methods
    ):
        return _qemu_err(
            E.INVALID_ARG, "invalid argument: Turn multithread compression on to tune it"
        )
    if "compression.xbzrle.cache" in read and "xbzrle" not in methods:
        return _qemu_err(E.INVALID_ARG, "invalid argument: Turn xbzrle compression on to tune it")
    return None


def compression_methods(call: MigrationCall) -> list[str]:
    """The VIR_MIGRATE_PARAM_COMPRESSION values of a call (typed params may repeat)."""
    value = call.params.get("compression")
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)]

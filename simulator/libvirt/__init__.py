"""libvirt migration flags model and a libvirt-python-shaped API over simulated hosts.

``import simulator.libvirt as libvirt`` and code written for libvirt-python runs
against simulated hosts; only the URI changes (``sim+qemu://NAME/system``).
"""

from simulator.libvirt.api import (
    VIR_DOMAIN_NOSTATE,
    VIR_DOMAIN_PAUSED,
    VIR_DOMAIN_RUNNING,
    VIR_DOMAIN_SHUTOFF,
    open,
    reset,
    set_engine,
    virConnect,
)
from simulator.libvirt.domain import virDomain
from simulator.libvirt.errors import ErrorDomain, ErrorNumber, libvirtError
from simulator.libvirt.flags import KNOWN_MASK, VIRSH_OPTION, MigrateFlag

for _f in MigrateFlag:
    globals()[_f.libvirt_name] = int(_f)
for _e in ErrorNumber:
    globals()[f"VIR_ERR_{_e.name}"] = int(_e)
for _d in ErrorDomain:
    globals()[f"VIR_FROM_{_d.name}"] = int(_d)

__all__ = [
    "KNOWN_MASK",
    "VIRSH_OPTION",
    "VIR_DOMAIN_NOSTATE",
    "VIR_DOMAIN_PAUSED",
    "VIR_DOMAIN_RUNNING",
    "VIR_DOMAIN_SHUTOFF",
    "ErrorDomain",
    "ErrorNumber",
    "MigrateFlag",
    "libvirtError",
    "open",
    "reset",
    "set_engine",
    "virConnect",
    "virDomain",
]

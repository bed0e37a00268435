"""The libvirt model's numbers are libvirt-python's (libvirt 9.0, a project dependency).

simulator/libvirt copies VIR_MIGRATE_*, VIR_ERR_* and VIR_FROM_* from libvirt's headers;
the suites compare error codes and domains of the model with real libvirt by number, so
one wrong value would make both sides "agree" on the wrong thing.
"""

from __future__ import annotations

import libvirt
import pytest

import simulator.libvirt as model
from simulator.libvirt import ErrorDomain, ErrorNumber, MigrateFlag
from simulator.libvirt.flags import KNOWN_MASK


def _real(name: str) -> int:
    value = getattr(libvirt, name, None)
    assert isinstance(value, int), f"libvirt-python has no integer constant {name}"
    return value


@pytest.mark.parametrize("flag", list(MigrateFlag), ids=lambda f: f.libvirt_name)
def test_migrate_flag_equals_libvirt(flag: MigrateFlag) -> None:
    """Verified:
    1. libvirt-python has the flag under the same name, with the same value.
    2. The model exports it under that name too (``import simulator.libvirt as libvirt``).
    """
    assert int(flag) == _real(flag.libvirt_name)
    assert getattr(model, flag.libvirt_name) == int(flag)


def test_model_knows_every_libvirt_migrate_flag() -> None:
    """Verified:
    1. Every single-bit VIR_MIGRATE_* constant of libvirt-python is a MigrateFlag member
       (VIR_MIGRATE_PARAM_* are strings, VIR_MIGRATE_MAX_SPEED_POSTCOPY belongs to
       virDomainMigrateMaxSpeedFlags and is not taken).
    2. KNOWN_MASK is exactly the union of libvirt's flags.
    """
    real = {
        name: value
        for name, value in vars(libvirt).items()
        if name.startswith("VIR_MIGRATE_")
        and isinstance(value, int)
        and not name.startswith("VIR_MIGRATE_MAX_SPEED_")
    }
    assert real == {f.libvirt_name: int(f) for f in MigrateFlag}
    union = 0
    for value in real.values():
        union |= value
    assert union == KNOWN_MASK


@pytest.mark.parametrize("number", list(ErrorNumber), ids=lambda e: e.name)
def test_error_number_equals_libvirt(number: ErrorNumber) -> None:
    """Verified:
    1. VIR_ERR_<name> of libvirt-python has the model's value.
    2. The model exports the same constant.
    """
    name = f"VIR_ERR_{number.name}"
    assert int(number) == _real(name)
    assert getattr(model, name) == int(number)


@pytest.mark.parametrize("domain", list(ErrorDomain), ids=lambda d: d.name)
def test_error_domain_equals_libvirt(domain: ErrorDomain) -> None:
    """Verified:
    1. VIR_FROM_<name> of libvirt-python has the model's value.
    2. The model exports the same constant.
    """
    name = f"VIR_FROM_{domain.name}"
    assert int(domain) == _real(name)
    assert getattr(model, name) == int(domain)

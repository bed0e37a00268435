"""libvirt error numbers, domains and the ``libvirtError`` exception.

Values from include/libvirt/virterror.h (libvirt 9.0): enum virErrorNumber and
enum virErrorDomain. Errors raised by src/libvirt-domain.c carry VIR_FROM_DOMAIN,
errors from the QEMU driver VIR_FROM_QEMU, from the remote driver VIR_FROM_REMOTE.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ErrorNumber(enum.IntEnum):
    """virErrorNumber values used by migration (names without ``VIR_ERR_``)."""

    OK = 0
    INTERNAL_ERROR = 1
    NO_SUPPORT = 3
    INVALID_ARG = 8
    OPERATION_FAILED = 9
    SYSTEM_ERROR = 38
    NO_DOMAIN = 42
    NO_STORAGE_POOL = 49
    OPERATION_INVALID = 55
    CONFIG_UNSUPPORTED = 67
    OPERATION_TIMEOUT = 68
    MIGRATE_PERSIST_FAILED = 69
    ARGUMENT_UNSUPPORTED = 74
    OPERATION_ABORTED = 78
    MIGRATE_UNSAFE = 81
    OVERFLOW = 82
    OPERATION_UNSUPPORTED = 84


class ErrorDomain(enum.IntEnum):
    """virErrorDomain values (names without ``VIR_FROM_``)."""

    NONE = 0
    RPC = 7
    QEMU = 10
    STORAGE = 18
    REMOTE = 13
    DOMAIN = 20


@dataclass(frozen=True)
class Refusal:
    """One libvirt error: code, domain, message (as libvirt formats it)."""

    code: ErrorNumber
    domain: ErrorDomain
    message: str
    # The source domain keeps its MIGRATION_OUT job after this error (a libvirt
    # 9.0 leak, see simulator.libvirt.driver); the next migration is refused.
    leaves_job: bool = False
    # A documented race: the error libvirt reports when the other host's failure
    # reaches its job first, and why both can happen (the differential accepts either
    # and counts it as raced).
    raced: Refusal | None = None
    race: str = ""

    def exception(self) -> libvirtError:
        """The libvirt-python style exception carrying this refusal."""
        return libvirtError(self.message, self)


class libvirtError(Exception):
    """Shaped like ``libvirt.libvirtError``: get_error_code/domain/message."""

    def __init__(self, defmsg: str, refusal: Refusal | None = None) -> None:
        super().__init__(defmsg)
        self.refusal = refusal or Refusal(ErrorNumber.INTERNAL_ERROR, ErrorDomain.NONE, defmsg)

    def get_error_code(self) -> int:
        return int(self.refusal.code)

    def get_error_domain(self) -> int:
        return int(self.refusal.domain)

    def get_error_message(self) -> str:
        return self.refusal.message

    def get_error_level(self) -> int:
        return 2  # VIR_ERR_ERROR


def refuse(code: ErrorNumber, domain: ErrorDomain, message: str) -> Refusal:
    """Shorthand used by the rule tables."""
    return Refusal(code, domain, message)

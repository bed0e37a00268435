"""Typed QMP errors and the (reply, events) shapes every operation returns."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

JSON = dict[str, Any]
#: One event as (name, data); the QMP layer adds the timestamp.
Event = tuple[str, JSON]


class ErrorClass(Enum):
    """QMP error classes (qapi/error.json; StratoVirt qmp_schema.rs QmpErrorClass)."""

    GENERIC_ERROR = "GenericError"
    COMMAND_NOT_FOUND = "CommandNotFound"
    DEVICE_NOT_ACTIVE = "DeviceNotActive"
    DEVICE_NOT_FOUND = "DeviceNotFound"
    KVM_MISSING_CAP = "KVMMissingCap"


@dataclass(frozen=True)
class QmpError:
    """A QMP error reply: ``{"error": {"class": ..., "desc": ...}}``."""

    cls: ErrorClass
    desc: str

    def to_qmp(self) -> JSON:
        """The wire form of this error (without ``id``)."""
        return {"error": {"class": self.cls.value, "desc": self.desc}}


class QmpFailure(Exception):
    """Raised inside command handlers; the dispatcher turns it into a QmpError reply."""

    def __init__(
        self,
        desc: str,
        cls: ErrorClass = ErrorClass.GENERIC_ERROR,
        events: list[Event] | None = None,
    ) -> None:
        super().__init__(desc)
        self.error = QmpError(cls, desc)
        self.events = list(events or [])  # what the failed command emitted on its way


#: What ``VM.execute`` returns as reply: the QMP "return" value or a QmpError.
Reply = JSON | list[JSON] | QmpError

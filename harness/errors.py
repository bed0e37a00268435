"""One error family for the harness: a one-line message plus context for reports."""

from __future__ import annotations

from collections.abc import Mapping


class HarnessError(Exception):
    """Base of every error the harness raises on purpose.

    ``str(err)`` is one line a user can act on; ``context`` carries what a report
    needs (argv, exit code, last console lines, QMP sent/received, migration phase).
    """

    def __init__(self, message: str, context: Mapping[str, object] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.context: dict[str, object] = dict(context or {})

    def __str__(self) -> str:
        return self.message


class InventoryError(HarnessError):
    """hosts.ini could not be read or is not valid."""


class SetupError(HarnessError):
    """A prerequisite (package, binary, image) is missing or could not be built."""


class LaunchError(HarnessError):
    """A hypervisor process did not start or died early."""


class QMPTimeout(HarnessError):
    """A QMP command or event did not arrive in time."""


class QMPCommandError(HarnessError):
    """The hypervisor answered a QMP command with an error."""

    def __init__(
        self, message: str, error_class: str, desc: str, context: Mapping[str, object] | None = None
    ) -> None:
        super().__init__(message, context)
        self.error_class = error_class
        self.desc = desc


class ConsoleError(HarnessError):
    """The guest serial console did not answer as expected."""


class LeakError(HarnessError):
    """A process or socket survived teardown."""


class WaitTimeout(HarnessError):
    """A condition did not become true in time."""

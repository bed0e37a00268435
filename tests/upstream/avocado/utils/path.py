"""avocado.utils.path.find_command."""

from __future__ import annotations

import shutil

_MISSING = object()


class CmdNotFoundError(Exception):
    """The command is not on PATH (and no default was given)."""


def find_command(cmd: str, default: object = _MISSING, check_exec: bool = True) -> object:
    """The command's path; ``default`` when it is not found, or CmdNotFoundError."""
    found = shutil.which(cmd)
    if found is not None:
        return found
    if default is _MISSING:
        raise CmdNotFoundError(cmd)
    return default

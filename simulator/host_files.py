"""What the simulated hypervisor process sees of its host's files (the model is pure:
the process hands it this view through ``World.host_file``)."""

from __future__ import annotations


def file_head(path: str, size: int = 512) -> bytes | None:
    """The first ``size`` bytes of a file a block backend opens; None when it cannot be
    opened, as open(2) would refuse (missing, a folder, no permission)."""
    try:
        with open(path, "rb") as f:
            return f.read(size)
    except OSError:
        return None

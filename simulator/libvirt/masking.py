"""Mask the variable parts of a libvirt error message before comparing texts.

Pids, ports, paths, URIs, UUIDs, host names and limits differ between a real run and
the model (and between two real runs); the wording around them does not. ``mask``
turns each variable part into a placeholder so two texts compare equal exactly when
libvirt would have said the same thing about the same kind of object.
"""

from __future__ import annotations

import re
import socket

_TIME = re.compile(r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z?")
_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I)
_URI = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"),]*", re.I)
_PATH = re.compile(r"(?<![\w.])/(?:[\w.+@-]+/?)+")
_ADDR = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b")
_NUMBER = re.compile(r"(?<![\w.])\d+(?![\w.])")
_HOST_FORMS = ("hvlab-sim-host",)


def _hostnames() -> tuple[str, ...]:
    name = socket.gethostname()
    return tuple(n for n in (name, name.split(".")[0], *_HOST_FORMS) if n)


def mask(message: str) -> str:
    """``message`` with its variable parts replaced by <time>, <uuid>, <uri>, <path>,
    <addr>, <host> and <n>."""
    text = _TIME.sub("<time>", message)
    text = _UUID.sub("<uuid>", text)
    text = _URI.sub("<uri>", text)
    text = _PATH.sub("<path>", text)
    text = _ADDR.sub("<addr>", text)
    for host in _hostnames():
        text = re.sub(rf"(?<![\w-]){re.escape(host)}(?![\w-])", "<host>", text)
    return _NUMBER.sub("<n>", text)

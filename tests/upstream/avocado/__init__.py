"""A stand-in for the parts of the avocado framework QEMU's avocado tests import.

``Test`` is a ``unittest.TestCase`` with avocado's services: ``params`` (from the
``HVLAB_AVOCADO_PARAMS`` JSON object in the environment, e.g. ``{"qemu_bin": ...}``),
``tags`` (from ``:avocado: tags=`` in the docstrings), ``workdir``/``logdir`` (private
temporary folders), ``log`` and ``cancel`` (a skip, as avocado reports a cancel).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import unittest
from typing import Any

skip = unittest.skip
skipIf = unittest.skipIf
skipUnless = unittest.skipUnless

__all__ = ["Test", "TestCancel", "skip", "skipIf", "skipUnless"]


class TestCancel(unittest.SkipTest):
    """avocado's CANCEL status: the test could not run here."""


class Params:
    """``self.params.get(key, default=...)`` over a JSON object from the environment."""

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values

    def get(self, key: str, path: str | None = None, default: Any = None) -> Any:
        return self._values.get(key, default)


def _tags(*docs: str | None) -> dict[str, set[str] | None]:
    """avocado's ``:avocado: tags=a,b:c`` docstring directives -> {name: values or None}."""
    out: dict[str, set[str] | None] = {}
    for doc in docs:
        for line in (doc or "").splitlines():
            text = line.strip()
            if not text.startswith(":avocado: tags="):
                continue
            for tag in text.removeprefix(":avocado: tags=").split(","):
                name, sep, value = tag.strip().partition(":")
                if not sep:
                    out.setdefault(name, None)
                    continue
                values = out.get(name) or set()
                values.add(value)
                out[name] = values
    return out


class Test(unittest.TestCase):
    """The base class avocado tests derive from (``avocado.Test``)."""

    timeout: float | None = None

    def __init__(self, methodName: str = "runTest") -> None:
        super().__init__(methodName)
        self.params = Params(json.loads(os.environ.get("HVLAB_AVOCADO_PARAMS", "{}")))
        method = getattr(self, methodName, None)
        self.tags = _tags(type(self).__doc__, getattr(method, "__doc__", None))
        self.log = logging.getLogger("avocado.test")
        self._base = tempfile.mkdtemp(prefix="avocado_")
        self.workdir = os.path.join(self._base, "work")
        self.logdir = os.path.join(self._base, "log")
        os.mkdir(self.workdir, 0o700)
        os.mkdir(self.logdir, 0o700)
        self.addCleanup(shutil.rmtree, self._base, True)

    def cancel(self, message: str | None = None) -> None:
        raise TestCancel(message or "canceled")

    def fetch_asset(self, name: str, *args: Any, **kwargs: Any) -> str:
        self.cancel(f"assets are not available here: {name}")
        raise AssertionError("unreachable")

"""Run avocado-style test methods from a file, unchanged, with the stand-in framework.

    python run_avocado.py --qemu-source DIR FILE CLASS.METHOD [CLASS.METHOD ...]

``sys.path`` gets this folder (the ``avocado`` stand-in), ``DIR/python`` (QEMU's own
``qemu.machine`` and ``qemu.qmp``) and the folder of FILE (its ``avocado_qemu``), ahead
of everything else, so QEMU's packages are the ones imported. Test parameters (e.g.
``qemu_bin``) come from ``HVLAB_AVOCADO_PARAMS``. The last line on stdout is a JSON list
of ``{"test", "outcome", "detail"}``, outcome one of pass, fail, error, cancel; the exit
status is 0 only when every test passed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent


class _Collect(unittest.TextTestResult):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.outcomes: list[dict[str, str]] = []

    def _note(self, test: unittest.TestCase, outcome: str, detail: str = "") -> None:
        self.outcomes.append({"test": test.id(), "outcome": outcome, "detail": detail})

    def addSuccess(self, test: unittest.TestCase) -> None:
        super().addSuccess(test)
        self._note(test, "pass")

    def addFailure(self, test: unittest.TestCase, err: object) -> None:
        super().addFailure(test, err)  # type: ignore[arg-type]
        self._note(test, "fail", self.failures[-1][1])

    def addError(self, test: unittest.TestCase, err: object) -> None:
        super().addError(test, err)  # type: ignore[arg-type]
        self._note(test, "error", self.errors[-1][1])

    def addSkip(self, test: unittest.TestCase, reason: str) -> None:
        super().addSkip(test, reason)
        self._note(test, "cancel", reason)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--qemu-source", required=True, type=Path)
    ap.add_argument("file", type=Path)
    ap.add_argument("tests", nargs="+")
    opts = ap.parse_args()
    for entry in reversed([HERE, opts.qemu_source / "python", opts.file.parent]):
        sys.path.insert(0, str(entry))
    spec = importlib.util.spec_from_file_location(opts.file.stem, opts.file)
    if spec is None or spec.loader is None:
        ap.error(f"cannot load {opts.file}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[opts.file.stem] = module
    spec.loader.exec_module(module)
    suite = unittest.TestLoader().loadTestsFromNames(opts.tests, module)
    runner = unittest.TextTestRunner(stream=sys.stderr, verbosity=2, resultclass=_Collect)
    result = runner.run(suite)
    assert isinstance(result, _Collect)
    print(json.dumps(result.outcomes))
    return 0 if all(o["outcome"] == "pass" for o in result.outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())

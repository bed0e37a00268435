"""hvlab's simulator as one file a lab host can run with its own python3."""

from __future__ import annotations

from pathlib import Path


def simulator_zipapp(folder: Path) -> Path:
    """simulator/ as ``folder``/hvlab-simulator.pyz, runnable as ``python3 FILE ARGS``.

    Built deterministically (sorted entries, fixed times) so its checksum, and so the
    staged copy on each host, changes only when the simulator's code does.
    """
    import zipfile

    import simulator

    root = Path(simulator.__file__).resolve().parent
    target = folder / "hvlab-simulator.pyz"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        main = zipfile.ZipInfo("__main__.py", (1980, 1, 1, 0, 0, 0))
        zf.writestr(main, "import runpy\nrunpy.run_module('simulator', run_name='__main__')\n")
        for path in sorted(root.rglob("*.py")):
            info = zipfile.ZipInfo(
                str(Path("simulator") / path.relative_to(root)), (1980, 1, 1, 0, 0, 0)
            )
            zf.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
    return target

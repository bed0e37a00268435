"""Command-line checks that depend on the build: its architecture, its cargo features,
and what its machine does with cold-plugged devices. Each raises :class:`CmdlineError`
with the one line to print.
"""

from __future__ import annotations

import dataclasses
import math

from simulator.cmdline_values import CmdlineError, UsageError, parse_workload
from simulator.model import Arch, Device, DeviceClass, MachineType, Workload
from simulator.model.devices import place_cold_devices
from simulator.model.profiles import BuildFeature, Profile


def parse_arch(text: str) -> Arch:
    """``--arch x86_64|aarch64``: which build the simulator stands in for."""
    try:
        return Arch(text.strip())
    except ValueError:
        names = ", ".join(a.value for a in Arch)
        raise CmdlineError(f"--arch: unknown architecture '{text}' (one of {names})") from None


def parse_build_features(text: str) -> frozenset[BuildFeature]:
    """``--build-features vfio[,...]``: the cargo features the lab's build has ("" none)."""
    out: set[BuildFeature] = set()
    for name in filter(None, (n.strip() for n in text.split(","))):
        try:
            out.add(BuildFeature(name))
        except ValueError:
            names = ", ".join(f.value for f in BuildFeature)
            raise CmdlineError(
                f"--build-features: unknown feature '{name}' (known: {names})"
            ) from None
    return frozenset(out)


def with_build_features(prof: Profile, features: frozenset[BuildFeature] | None) -> Profile:
    """The profile of a build with ``features`` (None: the profile's default build)."""
    if features is None or features == prof.build_features:
        return prof
    return dataclasses.replace(prof, build_features=features)


def check_cold_devices(devices: tuple[Device, ...], machine: MachineType, prof: Profile) -> None:
    """What the machine refuses among the -device options when it is created.

    machine/src/lib.rs add_devices: a driver behind a cargo feature the build lacks is
    "Unsupported device"; micro_common/mod.rs: cold virtio-blk/-net devices fill the
    replaceable slots, one more is refused.
    """
    for d in devices:
        feature = prof.driver_features.get(d.driver)
        if feature is not None and feature not in prof.build_features:
            raise CmdlineError(f'Unsupported device: "{d.driver}"')
    if machine is MachineType.MICROVM and prof.microvm_blk_slots:
        slots = {DeviceClass.BLK: prof.microvm_blk_slots, DeviceClass.NET: prof.microvm_net_slots}
        try:
            place_cold_devices(devices, slots)
        except ValueError as exc:
            raise CmdlineError(str(exc)) from None


def own_options(own: dict[str, str]) -> tuple[int, float, int | None, Workload]:
    """The simulator's own options: ``--seed``, ``--time-scale`` (finite, > 0),
    ``--qmp-rate-limit`` (commands per second, >= 0; 0: no limit) and ``--workload``.
    A bad value is a usage error (exit 2), not a refusal the product would give."""
    try:
        seed = int(own.get("seed", "0"))
    except ValueError:
        raise UsageError(f"--seed: '{own['seed']}' is not an integer") from None
    text = own.get("time-scale", "1")
    try:
        scale = float(text)
    except ValueError:
        scale = math.nan
    if not (math.isfinite(scale) and scale > 0):
        raise UsageError(f"--time-scale: '{text}' is not a finite number > 0")
    rate: int | None = None
    if "qmp-rate-limit" in own:
        text = own["qmp-rate-limit"]
        try:
            rate = int(text)
        except ValueError:
            rate = -1
        if rate < 0:
            raise UsageError(f"--qmp-rate-limit: '{text}' is not a whole number >= 0")
    try:
        workload = parse_workload(own["workload"]) if "workload" in own else Workload()
    except CmdlineError as exc:
        raise UsageError(str(exc)) from None
    return seed, scale, rate, workload

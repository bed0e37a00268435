"""The hvlab pytest plugin: options, targets, the VM factory fixture and the report.

Options: ``--target`` (repeatable; a name or prefix), ``--hosts`` (inventory),
``--report-dir`` (write reports/<run-id>/), ``--timeout-factor`` (scales every wait).
A test that takes the ``target`` fixture runs once per target; targets that cannot
run here are still listed, skipped with their reason.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import zlib
from collections.abc import Generator, Iterator
from typing import Any

import pytest

from harness import fixtures, reap
from harness.errors import HarnessError
from harness.fixtures import VMFactory
from harness.hostset import same_host
from harness.libvirt.target import LibvirtTarget
from harness.report import hookspecs
from harness.report.catalog import write_catalog
from harness.report.record import HOSTS_PROPERTY, Recorder, target_name
from harness.report.writer import finish_run, summary_lines
from harness.retention import prune_artifacts
from harness.session import LAB_ENV, Session, add_options
from harness.targets.base import Target
from harness.waits import parse_factor, set_timeout_factor, timeout_factor

_STATE = pytest.StashKey["Session"]()
_RECORDER = pytest.StashKey[Recorder]()
_FAILED = pytest.StashKey[bool]()


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def _state(config: pytest.Config) -> Session:
    return config.stash[_STATE]


def pytest_configure(config: pytest.Config) -> None:
    factor = config.getoption("--timeout-factor")
    try:
        if factor is not None:
            set_timeout_factor(parse_factor(factor, "--timeout-factor"))
        timeout_factor()  # HVLAB_TIMEOUT_FACTOR, if that is where it comes from
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    if not hasattr(config, "workerinput"):
        _reap_dead_runs()
    config.stash[_STATE] = Session(config)
    _CONFIGS.append(config)
    if config.getoption("--netns-lab") and not hasattr(config, "workerinput"):
        config.stash[_STATE].lab_inventory()  # now, so that xdist workers inherit it
    if not config.pluginmanager.has_plugin("hvlab-fixtures"):
        config.pluginmanager.register(fixtures, "hvlab-fixtures")
    if threading.current_thread() is threading.main_thread():
        # SIGTERM (CI cancel, timeout) tears down like Ctrl-C: every VM gets its
        # shutdown and the partial report is finished, instead of orphaned hypervisors.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, _terminate)

    config.addinivalue_line("markers", "catalog(*ids): behaviour-catalog ids this test verifies")


def _reap_dead_runs() -> None:
    """What runs killed on this machine left (their owner is gone) goes first."""
    with reap.reaper_lock() as held:
        if held is None:
            print("hvlab: another run is reaping dead runs' leftovers", file=sys.stderr)
            return
        dead = reap.find(None)
        if dead:
            reap.reap(dead)
            print(f"hvlab: reaped {len(dead.lines())} leftovers of runs that died", file=sys.stderr)


def _terminate(signum: int, frame: object) -> None:
    """The first SIGINT/SIGTERM stops the run; the ones after it only say it is stopping
    (a second Ctrl-C must not cut the cleanup short with a traceback)."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _still_stopping)
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _still_stopping(signum: int, frame: object) -> None:
    """A second Ctrl-C (or SIGTERM) while the first one's cleanup runs: no traceback, and
    the cleanup (every VM's shutdown, the report) goes on."""
    print("hvlab: still stopping: shutting the VMs down and writing the report", file=sys.stderr)


def pytest_runtest_logstart(nodeid: str, location: tuple[str, int | None, str]) -> None:
    _RUNNING[:] = [nodeid]


def pytest_runtest_logfinish(nodeid: str, location: tuple[str, int | None, str]) -> None:
    _RUNNING.clear()


def pytest_keyboard_interrupt(excinfo: pytest.ExceptionInfo[BaseException]) -> None:
    """Say in run.json (so results.json, junit.xml and the page) that the run stopped,
    by what, and which test was running; then ignore further signals until it is over."""
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, _still_stopping)
    by = str(excinfo.value) or "SIGINT"
    for config in _CONFIGS:
        state = config.stash.get(_STATE, None)
        if state is not None and state.report is not None:
            running = _RUNNING[0] if _RUNNING else None
            state.report.update_meta(interrupted={"by": by, "running": running})


_RUNNING: list[str] = []
_CONFIGS: list[pytest.Config] = []


def pytest_sessionstart(session: pytest.Session) -> None:
    """A --target naming nothing stops the run here, with one line, before collection."""
    state = _state(session.config)
    if state.wanted and not state.worker:
        try:
            state.targets  # noqa: B018 (selecting raises on an unknown name)
        except HarnessError as exc:
            raise pytest.UsageError(str(exc)) from None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Two target axes: ``target`` (hypervisors) and ``libvirt_target`` (the flag rules)."""
    state = _state(metafunc.config)
    if "libvirt_target" in metafunc.fixturenames:
        chosen = [_param(state, t) for t in state.libvirt_targets]
        if not chosen:
            chosen = [
                pytest.param(None, id="no-target", marks=pytest.mark.skip(reason=_OTHER_AXIS))
            ]
        metafunc.parametrize("libvirt_target", chosen, scope="module")
    if "target" not in metafunc.fixturenames:
        return
    try:
        targets = state.targets
    except HarnessError as exc:
        raise pytest.UsageError(str(exc)) from None
    if not targets:
        reason = "no target selected" if not state.wanted else _OTHER_AXIS
        skip = pytest.mark.skip(reason=reason)
        if "placement" in metafunc.fixturenames:  # one value per name: (target, placement)
            none = pytest.param(None, None, id="no-target", marks=skip)
            metafunc.parametrize(("target", "placement"), [none])
        else:
            metafunc.parametrize("target", [pytest.param(None, id="no-target", marks=skip)])
        return
    if "placement" not in metafunc.fixturenames:
        metafunc.parametrize("target", [_param(state, t) for t in targets])
        return
    # placement is a dimension like the target: every target x each of its placements
    combos = []
    for t in targets:
        down = _unavailable(state, t)
        for p in state.hostset.placements(t):
            why = down or (f"{p.name}: {p.problem}" if p.problem else None)
            marks = [pytest.mark.skip(reason=f"{t.name}: {why}")] if why else []
            ident = t.name if not p.cross else f"{t.name}@{p.name}"
            combos.append(pytest.param(t, p, id=ident, marks=marks))
    metafunc.parametrize(("target", "placement"), combos)


#: a --target naming only targets of the other axis leaves these tests out of the run
_OTHER_AXIS = "--target names no target of this kind"


def _param(state: Session, target: Target | LibvirtTarget) -> Any:
    reason = _unavailable(state, target)
    marks = [pytest.mark.skip(reason=f"{target.name}: {reason}")] if reason else []
    return pytest.param(target, id=target.name, marks=marks)


_REASONS: dict[str, str | None] = {}


def _shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    k, sep, n = text.partition("/")
    if not (sep and k.isascii() and n.isascii() and k.isdigit() and n.isdigit()):
        raise pytest.UsageError(f"--shard {text!r} is not K/N")
    if not 1 <= int(k) <= int(n):
        raise pytest.UsageError(f"--shard {text}: K must be between 1 and N")
    return int(k), int(n)


def _unavailable(state: Session, target: Target | LibvirtTarget) -> str | None:
    """Asked once per target and process (a libvirt probe starts a daemon)."""
    if target.name not in _REASONS:
        _REASONS[target.name] = (
            target.unavailable_reason()
            if isinstance(target, LibvirtTarget)
            else state.hostset.unavailable(target)
        )
    return _REASONS[target.name]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out tests whose every target was deselected by --target's other axis, and
    the tests of other shards."""
    shard = _shard(config.getoption("--shard"))
    dropped = [
        i
        for i in items
        if any(m.kwargs.get("reason") == _OTHER_AXIS for m in i.iter_markers("skip"))
        or (shard is not None and zlib.crc32(i.nodeid.encode()) % shard[1] != shard[0] - 1)
    ]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        gone = {id(i) for i in dropped}
        items[:] = [i for i in items if id(i) not in gone]


@pytest.fixture
def vms(request: pytest.FixtureRequest, target: Target) -> Iterator[VMFactory]:
    """A factory that owns every VM of this test; leak-checked at teardown."""
    state = _state(request.config)
    hosts = state.hostset
    if "placement" in request.fixturenames:
        placement = hosts.resolve(request.getfixturevalue("placement"))
    else:
        home = hosts.home(target)
        placement = same_host(home, hosts.runner(home))
    factory = VMFactory(
        target,
        state.artifacts(request.node.nodeid),
        images=state.image,
        boot=state.templates,
        placement=placement,
        on_host=hosts.on_host,
    )
    yield factory
    try:
        factory.close()
    finally:
        failed = request.node.stash.get(_FAILED, False)
        if not failed and not request.config.getoption("--keep-artifacts"):
            prune_artifacts(factory.artifacts)  # a passing test's big files say nothing
        used = list(dict.fromkeys(m.runner.name for m in factory.machines))
        request.node.user_properties.append((HOSTS_PROPERTY, used))


# -- results (the logic lives in harness/report/) -------------------------------------
def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Before any test runs: every target axis value in run.json, and catalog.json from
    the suites' catalog (``pytest_hvlab_catalog``) resolved for those targets."""
    state = _state(session.config)
    if state.report is None:
        return
    names = [str(t) for t in state.report.meta.get("targets") or []]
    names = list(dict.fromkeys([*names, *filter(None, map(target_name, session.items))]))
    state.report.update_meta(targets=names)
    lease = os.environ.get("HVLAB_POOL_LEASE")
    if lease:  # hvlab run --coordinator: which place and hosts this run held
        state.report.update_meta(pool=json.loads(lease), shard=session.config.getoption("--shard"))
    source = session.config.hook.pytest_hvlab_catalog(config=session.config)
    if source is not None:
        write_catalog(state.report.dir, source.entries(names))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    rep = yield
    if rep.failed:
        item.stash[_FAILED] = True
    state = _state(item.config)
    if state.report is not None:
        recorder = item.config.stash.setdefault(_RECORDER, Recorder())
        rel = os.path.relpath(state.artifacts(item.nodeid), state.report.dir)
        result = recorder.add(item, call, rep, rel)
        if result is not None:
            state.report.add(result)
    return rep


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(_STATE, None)
    if state is None:
        return
    if not state.worker:
        state.record_hosts()
    state.drop_scratch(keep=exitstatus != 0)


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(_STATE, None)
    if state is not None:
        state.templates.close()
        if state._hostset is not None:
            state._hostset.close()
        if state.lab is not None:
            state.lab.down()
            os.environ.pop(LAB_ENV, None)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = _state(config)
    if state.report is None or state.worker:
        return
    results = finish_run(state.report)
    terminalreporter.section("hvlab summary")
    for line in summary_lines(results):
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"report: {state.report.index}")

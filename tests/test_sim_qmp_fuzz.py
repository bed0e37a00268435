"""Hostile input to the simulator's QMP server: it answers or closes, never dies or hangs.

``HVLAB_FUZZ_EXAMPLES`` raises the number of Hypothesis examples (default 250 examples x
25+ messages each, i.e. over 6,000 messages per profile).
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.fixtures import VMFactory
from harness.machine import Machine
from harness.spec import VMSpec
from harness.targets.sim import SimTarget

EXAMPLES = int(os.environ.get("HVLAB_FUZZ_EXAMPLES", "250"))
MESSAGES_PER_EXAMPLE = 25
COMMANDS = [
    "qmp_capabilities",
    "query-status",
    "stop",
    "cont",
    "migrate",
    "migrate_cancel",
    "query-migrate",
    "migrate-set-parameters",
    "migrate-set-capabilities",
    "migrate-start-postcopy",
    "query-cpus",
    "query-cpus-fast",
    "query-hotpluggable-cpus",
    "device_add",
    "device_del",
    "blockdev-add",
    "blockdev-del",
    "netdev_add",
    "netdev_del",
    "balloon",
    "query-balloon",
    "system_reset",
    "nonexistent",
    "",
]
SAFE_COMMANDS = [c for c in COMMANDS if c not in ("quit", "system_reset", "migrate")]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4)
    ),
    max_leaves=12,
)
commands = st.fixed_dictionaries(
    {"execute": st.sampled_from(SAFE_COMMANDS)},
    optional={
        "arguments": st.dictionaries(
            st.sampled_from(
                [
                    "uri",
                    "id",
                    "driver",
                    "value",
                    "node-name",
                    "capabilities",
                    "bus",
                    "addr",
                    "type",
                    "x",
                ]
            ),
            json_values,
            max_size=4,
        )
        | json_values,
        "id": json_values,
        "bogus": json_values,
    },
)


def _encode(v: object) -> bytes:
    return json.dumps(v).encode()


messages = st.one_of(
    commands.map(_encode),
    json_values.map(_encode),
    st.binary(max_size=200),
    st.text(max_size=200).map(str.encode),
    st.integers(1000, 70000).map(lambda n: b'{"execute":"' + b"A" * n + b'"}'),
    st.integers(1, 3000).map(lambda n: b"[" * n + b"]" * n),
    st.sampled_from(
        [
            b"}",
            b"]]]",
            b'{"execute":',
            b'"unterminated',
            b"\xff\xfe",
            b"\r\n",
            b'{"execute":"stop","id":1}{"execute":"cont"}',
            b"\x00" * 64,
        ]
    ),
)


@pytest.fixture(scope="module", params=["qemu-7.2", "stratovirt-2.4", "stratovirt-2.5"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Machine]:
    """A simulator process with nothing connected: the test is its only QMP client."""
    target = SimTarget(str(request.param), options=("--qmp-rate-limit", "0"))
    vms = VMFactory(target, tmp_path_factory.mktemp("fuzz"))
    try:
        yield vms.create(VMSpec(memory_mib=256), "fuzz").start()
    finally:
        vms.close()


def _connect(path: Path) -> tuple[socket.socket, bytes]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5.0)
    s.connect(str(path))
    buf = b""
    while b"\r\n" not in buf:
        chunk = s.recv(65536)
        assert chunk, "server closed before greeting"
        buf += chunk
    return s, buf


def _probe(path: Path) -> dict[str, object]:
    """A fresh client still gets a greeting and a query-status answer."""
    s, _ = _connect(path)
    try:
        s.sendall(b'{"execute":"qmp_capabilities"}\r\n')
        _read_reply(s)
        s.sendall(b'{"execute":"query-status","id":"probe"}\r\n')
        return _read_reply(s)
    finally:
        s.close()


def _read_reply(s: socket.socket) -> dict[str, object]:
    buf = b""
    while True:
        while b"\r\n" in buf:
            line, buf = buf.split(b"\r\n", 1)
            msg = json.loads(line)
            if "return" in msg or "error" in msg:
                return dict(msg)
        chunk = s.recv(65536)
        assert chunk, "server closed the connection"
        buf += chunk


def test_qmp_server_survives_hostile_input(server: Machine) -> None:
    """>= 10,000 malformed or hostile messages per profile (with the defaults).

    1. For every batch, the server greets a new client (one client at a time).
    2. Every byte sequence sent gets replies or nothing, never a crash: the process lives.
    3. Each batch ends with the client half-closing: the server answers and closes within
       5 s (no hang); afterwards a fresh client gets a greeting and a query-status answer.
    4. Replies are well-formed QMP (JSON objects with return, error, event or QMP).
    """
    sent = 0

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(messages, min_size=MESSAGES_PER_EXAMPLE, max_size=MESSAGES_PER_EXAMPLE))
    def batch(msgs: list[bytes]) -> None:
        nonlocal sent
        s, greeting = _connect(server.paths.qmp)
        assert b'"QMP"' in greeting
        # Read while writing, as a real client does: error replies may echo a 60 KiB
        # command name, and a client that only writes would fill both socket buffers and
        # deadlock against a server that is blocked writing to it.
        received: list[bytes] = []
        failure: list[BaseException] = []

        def drain() -> None:
            try:
                while chunk := s.recv(1 << 20):  # 5 s timeout: a hang fails the test
                    received.append(chunk)
            except OSError as exc:
                failure.append(exc)

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        try:
            for m in msgs:
                s.sendall(m + b"\n")
                sent += 1
            s.shutdown(socket.SHUT_WR)  # the server must answer everything, then close
            reader.join(30)
            assert not reader.is_alive(), "the server neither answered nor closed"
            assert not failure, f"no answer and no close within 5 s: {failure[0]!r}"
        finally:
            s.close()
        buf = b"".join(received)
        for line in buf.split(b"\r\n"):
            if line:
                msg = json.loads(line)
                assert isinstance(msg, dict) and {"return", "error", "event", "QMP"} & msg.keys()
        assert server.exit_code() is None, server.stderr_tail(20)

    batch()
    reply = _probe(server.paths.qmp)
    assert "return" in reply, reply
    assert server.exit_code() is None
    assert sent >= EXAMPLES * MESSAGES_PER_EXAMPLE
    assert "Traceback" not in server.stderr_tail(10_000)

"""hvlab's helper on a lab host: run by ``python3 agent.py COMMAND ...`` over SSH.

Standard library only (a lab host needs python3 and nothing of hvlab). The controller
(harness/lab/ssh.py) copies this file to the host once, by checksum, and calls it with
argv words it quoted itself: no command line is built from inventory values.

Commands:
  spawn OWNER -- ARGV...       run ARGV in its own session with HVLAB_OWNER=OWNER, its
                               stdout+stderr into the channel's stderr; print {"pid": N}
                               then {"exit": CODE}. A line on stdin ("TERM", "KILL",
                               "INT", "STOP", "CONT") signals the process group; EOF on
                               stdin (the controller is gone) kills the group.
  mkdtemp PREFIX               a fresh 0700 directory under the temp dir; prints it
  rmtree PATH                  remove a directory this agent made (an hvlab- temp dir)
  exists PATH                  exit 0 if PATH exists
  put PATH SHA256 MODE         stdin into PATH atomically, if its digest is SHA256
  has PATH SHA256              exit 0 if PATH exists with that digest
  cat PATH                     PATH to stdout
  free-port ADDRESS            a TCP port free on ADDRESS a moment ago
  procs [OWNER]                JSON list of live processes tagged HVLAB_OWNER[=OWNER]
  kill-tagged OWNER            SIGKILL them; JSON list of what was killed
  facts                        JSON: arch, kernel, versions, /dev/kvm, memory, tools
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading

OWNER_ENV = "HVLAB_OWNER"
SIGNALS = {
    "TERM": signal.SIGTERM,
    "KILL": signal.SIGKILL,
    "INT": signal.SIGINT,
    "STOP": signal.SIGSTOP,
    "CONT": signal.SIGCONT,
}


def _say(obj: object) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def spawn(owner: str, argv: list[str]) -> int:
    env = dict(os.environ)
    env[OWNER_ENV] = owner
    try:
        child = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=sys.stderr.fileno(),
            stderr=sys.stderr.fileno(),
            env=env,
            start_new_session=True,
        )
    except OSError as exc:
        _say({"error": f"cannot start {argv[0]}: {exc}"})
        return 127
    _say({"pid": child.pid})

    def control() -> None:
        for line in sys.stdin:
            sig = SIGNALS.get(line.strip())
            if sig is not None:
                _killpg(child.pid, sig)
        _killpg(child.pid, signal.SIGKILL)  # the controller went away: leave nothing

    threading.Thread(target=control, daemon=True).start()
    code = child.wait()
    _killpg(child.pid, signal.SIGKILL)  # helpers the process left in its group
    _say({"exit": code})
    return 0


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def put(path: str, sha: str, mode: str) -> int:
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".put-")
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            for block in iter(lambda: sys.stdin.buffer.read(1 << 20), b""):
                digest.update(block)
                out.write(block)
        if digest.hexdigest() != sha:
            sys.stderr.write(f"checksum mismatch for {path}\n")
            return 1
        os.chmod(tmp, int(mode, 8))
        os.replace(tmp, path)
        tmp = ""
        return 0
    finally:
        if tmp:
            os.unlink(tmp)


def tagged(owner: str | None) -> list[dict[str, object]]:
    needle = f"{OWNER_ENV}={owner}".encode() if owner else None
    prefix = f"{OWNER_ENV}=".encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as fh:
                environ = fh.read().split(b"\0")
            if needle is not None and needle not in environ:
                continue
            if needle is None and not any(e.startswith(prefix) for e in environ):
                continue
            with open(f"/proc/{name}/stat") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                    continue
            with open(f"/proc/{name}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, IndexError):
            continue
        found.append({"pid": int(name), "cmdline": cmd})
    return found


def _version(argv: list[str]) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"(\d+\.\d+(?:\.\d+)?)", out.stdout + out.stderr)
    return m.group(1) if m else "unknown"


def _meminfo() -> dict[str, int]:
    info = {}
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                info[key] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return info


def facts() -> dict[str, object]:
    mem = _meminfo()
    return {
        "arch": platform.machine(),
        "kernel": platform.release(),
        "qemu": {
            a: v
            for a, b in (("x86_64", "qemu-system-x86_64"), ("aarch64", "qemu-system-aarch64"))
            if (v := _version([b, "--version"]))
        },
        "stratovirt": _version(["stratovirt", "-version"]),
        "libvirt": _version(["libvirtd", "--version"]),
        "kvm_device": os.path.exists("/dev/kvm"),
        "mem_available_kib": mem.get("MemAvailable", 0),
        "hugepages_total": mem.get("HugePages_Total", 0),
        "tools": {t: shutil.which(t) is not None for t in ("ip", "bridge", "tc", "nft")},
        "python": platform.python_version(),
        "kernel_key": f"{_read('/proc/sys/kernel/random/boot_id')}-{_kvm_rdev()}",
    }


def _read(path: str) -> str:
    try:
        with open(path) as fh:
            return fh.read().strip()
    except OSError:
        return "unknown"


def _kvm_rdev() -> int:
    try:
        return os.stat("/dev/kvm").st_rdev
    except OSError:
        return 0


def main(argv: list[str]) -> int:
    if not argv:
        sys.stderr.write(__doc__ or "")
        return 2
    cmd = argv[0]
    # paths may start with ~/ (the controller does not know the remote home)
    args = [os.path.expanduser(a) if a.startswith("~/") else a for a in argv[1:]]
    if cmd == "spawn" and len(args) >= 3 and args[1] == "--":
        return spawn(args[0], args[2:])
    if cmd == "mkdtemp" and len(args) == 1:
        print(tempfile.mkdtemp(prefix=args[0]))
        return 0
    if cmd == "rmtree" and len(args) == 1:
        path = os.path.realpath(args[0])
        if os.path.dirname(path) != os.path.realpath(tempfile.gettempdir()) or not (
            os.path.basename(path).startswith("hvlab-")
        ):
            sys.stderr.write(f"refusing to remove {path}: not an hvlab temp dir\n")
            return 2
        shutil.rmtree(path, ignore_errors=True)
        return 0
    if cmd == "exists" and len(args) == 1:
        return 0 if os.path.lexists(args[0]) else 1
    if cmd == "put" and len(args) == 3:
        return put(args[0], args[1], args[2])
    if cmd == "has" and len(args) == 2:
        return 0 if os.path.isfile(args[0]) and _sha256(args[0]) == args[1] else 1
    if cmd == "cat" and len(args) == 1:
        try:
            with open(args[0], "rb") as fh:
                shutil.copyfileobj(fh, sys.stdout.buffer)
        except OSError as exc:
            sys.stderr.write(f"{exc}\n")
            return 1
        return 0
    if cmd == "free-port" and len(args) == 1:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((args[0], 0))
            print(sock.getsockname()[1])
        return 0
    if cmd == "procs" and len(args) <= 1:
        _say(tagged(args[0] if args else None))
        return 0
    if cmd == "kill-tagged" and len(args) == 1:
        victims = tagged(args[0])
        for v in victims:
            try:
                os.kill(int(str(v["pid"])), signal.SIGKILL)
            except ProcessLookupError:
                pass
        _say(victims)
        return 0
    if cmd == "facts" and not args:
        _say(facts())
        return 0
    sys.stderr.write(f"agent: bad command {argv!r}\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

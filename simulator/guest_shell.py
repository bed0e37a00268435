"""A tiny simulated guest shell on the serial console, answering from the model's state.

It understands what the harness and the suites type (``harness/console.py``):
``;``-separated command lists, ``&&``/``||`` chains, ``|`` pipelines, ``2>/dev/null``,
single/double quotes, ``$?``, plus the commands the suites and common tooling use:
``true``, ``false``, ``echo``, ``uname``, ``grep`` (``-c ^processor /proc/cpuinfo`` or a
pattern on stdin), ``sleep``, ``hvlab-pattern``, ``hvlab-counter``, and what reads the
guest's devices (:mod:`simulator.guest_files`): ``ls``, ``cat`` of /proc and /sys files
(``/sys/devices/system/cpu/present`` with hot-added vCPUs), ``date``, ``lsblk``,
``md5sum /dev/vdX``. As in busybox sh, a command's errors
go to stderr (dropped by ``2>/dev/null``) and a pipeline's status is its last command's.
Everything it knows about the guest lives in :class:`GuestState` (travels as device
state) and the :class:`PageMap` (travels as memory).
"""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from simulator import guest_files, guest_tools
from simulator.guest_files import FilesView, columns, list_dir, read_file
from simulator.guest_memory import pattern_md5
from simulator.guest_state import GuestState
from simulator.model.units import PAGE_SIZE, MiB

PROMPT = "hvlab# "
READY_MARK = "hvlab-guest ready"
KERNEL_RELEASE = "6.1.0-hvlab-sim"
_PATTERN_FILE = "/dev/shm/hvlab-pattern"
_COUNTER_FILE = "/tmp/hvlab-counter"


class GuestView(FilesView, Protocol):
    """What the shell reads from the simulated machine (its files: :class:`FilesView`)."""

    @property
    def arch(self) -> str: ...

    @property
    def guest(self) -> GuestState: ...

    def block_devices(self) -> list[str]: ...

    def pattern_base(self) -> int: ...


def split_words(text: str, status: int) -> list[str]:
    """Shell words with quotes removed and ``$?`` expanded."""
    words: list[str] = []
    cur: list[str] = []
    have = False
    quote = ""
    i = 0
    while i < len(text):
        c = text[i]
        if quote == "'":
            if c == "'":
                quote = ""
            else:
                cur.append(c)
        elif c == "'" or c == '"':
            if quote == c:
                quote = ""
            elif not quote:
                quote = c
            else:
                cur.append(c)
            have = True
        elif c == "$" and text[i + 1 : i + 2] == "?":
            cur.append(str(status))
            have = True
            i += 1
        elif c.isspace() and not quote:
            if cur or have:
                words.append("".join(cur))
            cur, have = [], False
        else:
            cur.append(c)
            have = True
        i += 1
    if cur or have:
        words.append("".join(cur))
    return words


def split_commands(line: str) -> list[str]:
    """Split a line at ``;`` outside quotes."""
    out: list[str] = []
    cur: list[str] = []
    quote = ""
    for c in line:
        if quote:
            quote = "" if c == quote else quote
            cur.append(c)
        elif c in "'\"":
            quote = c
            cur.append(c)
        elif c in ";\n":
            out.append("".join(cur))
            cur = []
        else:
            cur.append(c)
    out.append("".join(cur))
    return [c.strip() for c in out if c.strip()]


def split_operators(words: list[str]) -> list[tuple[str, list[list[str]]]]:
    """Words of one command -> [(connector, pipeline)]: connector "" | "&&" | "||".

    Operators must stand as separate words (``a || b``, ``a | b``), as the suites write them.
    """
    chain: list[tuple[str, list[list[str]]]] = []
    connector = ""
    pipeline: list[list[str]] = []
    cur: list[str] = []
    for w in words:
        if w in ("&&", "||"):
            pipeline.append(cur)
            chain.append((connector, pipeline))
            connector, pipeline, cur = w, [], []
        elif w == "|":
            pipeline.append(cur)
            cur = []
        else:
            cur.append(w)
    pipeline.append(cur)
    chain.append((connector, pipeline))
    return chain


class GuestShell:
    """Runs console lines against a :class:`GuestView`; resumable across ``sleep``."""

    def __init__(self, view: GuestView) -> None:
        self.view = view
        self.status = 0
        self._queue: list[str] = []  # commands left of the current line
        self._wake_at: float | None = None

    @property
    def busy(self) -> bool:
        return bool(self._queue) or self._wake_at is not None

    def feed_line(self, line: str) -> str:
        """Start a typed line; returns what the guest prints now."""
        self._queue = split_commands(line)
        return self.resume()

    def resume(self) -> str:
        """Run queued commands until done or sleeping; returns the output."""
        g = self.view.guest
        if self._wake_at is not None:
            if g.runtime < self._wake_at:
                return ""
            self._wake_at = None
            self.status = 0
        out: list[str] = []
        while self._queue:
            cmd = self._queue.pop(0)
            words = [w for w in split_words(cmd, self.status) if not _is_redirect(w)]
            if words and words[0] == "sleep":
                try:
                    secs = float(words[1]) if len(words) > 1 else 0.0
                except ValueError:
                    out.append(f"sleep: invalid number '{words[1]}'\n")
                    self.status = 1
                    continue
                self._wake_at = g.runtime + secs
                break
            status, text = self.run_chain(cmd)
            self.status = status
            out.append(text)
        if not self.busy:
            out.append(PROMPT)
        return "".join(out).replace("\n", "\r\n")

    def run_chain(self, cmd: str) -> tuple[int, str]:
        """One ``;``-free command line: pipelines joined by ``&&``/``||``; ``( ... )`` a
        subshell, a trailing ``&`` runs it in the background (status 0, output gone)."""
        text = cmd.strip()
        if text.startswith("(") and text.endswith(")"):
            text = text[1:-1].strip()
        if text.endswith("&") and not text.endswith("&&"):
            self.run_chain(text[:-1])
            return 0, ""
        status, out = self.status, []
        for connector, pipeline in split_operators(split_words(cmd, self.status)):
            if (connector == "&&" and status != 0) or (connector == "||" and status == 0):
                continue
            stdin: str | None = None
            for i, words in enumerate(pipeline):
                quiet = any(w.startswith("2>") for w in words)
                words = [w for w in words if not _is_redirect(w)]
                res = self.run(words, stdin, tty=i + 1 == len(pipeline))
                status = res.status
                err = "" if quiet else res.err
                if i + 1 < len(pipeline):
                    stdin = res.out
                    out.append(err)
                else:
                    out.append(res.out + err)
        return status, "".join(out)

    def run(self, words: list[str], stdin: str | None = None, tty: bool = True) -> Result:
        """One simple command -> its exit status, stdout and stderr (``tty``: its stdout
        is the console, not a pipe)."""
        if not words:
            return Result(self.status)
        name, args = words[0], words[1:]
        if name == "sleep":
            return Result(0)  # inside a pipeline or chain: no pause modelled
        if name == "ls":
            return _ls(self.view, args, tty)
        fn = _COMMANDS.get(name)
        if fn is None:
            return Result(127, err=f"sh: {name}: not found\n")
        if name == "grep" and stdin is not None:
            return _grep_stdin(args, stdin)
        res = fn(self.view, args)
        if isinstance(res, Result):
            return res
        status, text = res
        return Result(status, text) if status == 0 else Result(status, err=text)


@dataclass(frozen=True)
class Result:
    status: int
    out: str = ""
    err: str = ""


Command = Callable[["GuestView", list[str]], "tuple[int, str] | Result"]


def _is_redirect(word: str) -> bool:
    return word.startswith(">") or word.startswith("2>") or word.startswith("<")


def _grep_stdin(args: list[str], stdin: str) -> Result:
    """``grep [-c] PATTERN`` on a pipe (fixed-string match, as the suites use it)."""
    count = "-c" in args
    rest = [a for a in args if not a.startswith("-")]
    if len(rest) != 1:
        return Result(2, err="grep: unsupported in the simulated guest\n")
    hits = [line for line in stdin.splitlines() if rest[0] in line]
    text = f"{len(hits)}\n" if count else _lines(hits)
    return Result(0 if hits else 1, text)


def _lines(items: list[str]) -> str:
    return "".join(f"{x}\n" for x in items)


def _true(v: GuestView, args: list[str]) -> tuple[int, str]:
    return 0, ""


def _false(v: GuestView, args: list[str]) -> tuple[int, str]:
    return 1, ""


def _echo(v: GuestView, args: list[str]) -> tuple[int, str]:
    if args and args[0] == "-n":
        return 0, " ".join(args[1:])
    return 0, " ".join(args) + "\n"


def _uname(v: GuestView, args: list[str]) -> tuple[int, str]:
    if args == ["-m"]:
        return 0, v.arch + "\n"
    if args == ["-r"]:
        return 0, KERNEL_RELEASE + "\n"
    if args in ([], ["-s"]):
        return 0, "Linux\n"
    return 0, f"Linux hvlab-guest {KERNEL_RELEASE} {v.arch} GNU/Linux\n"


def _grep(v: GuestView, args: list[str]) -> Result:
    if args == ["-c", "^processor", "/proc/cpuinfo"]:
        return Result(0, f"{v.online_cpus}\n")
    return Result(*guest_tools.grep(v, args))


def _ls(v: GuestView, args: list[str], tty: bool) -> Result:
    """busybox ``ls [-1] [DIR]``: columns on the console, one name per line into a pipe."""
    paths = [a for a in args if not a.startswith("-")]
    path = paths[-1] if paths else "."
    names = list_dir(v, path)
    if names is None:
        return Result(1, err=f"ls: {path.rstrip('/') or '/'}: No such file or directory\n")
    if tty and "-1" not in args:
        return Result(0, columns(names))
    return Result(0, _lines(names))


def _cat(v: GuestView, args: list[str]) -> Result:
    out, errs, status = [], [], 0
    for path in args:
        parts = path.split("/")
        if len(parts) == 6 and parts[1:4] == ["sys", "class", "net"] and parts[5] == "address":
            found = [mac for name, mac in v.mac_addresses() if fnmatch.fnmatchcase(name, parts[4])]
            if found:
                out += found
                continue
        if path == _COUNTER_FILE and v.guest.counter_start is not None:
            out.append(str(_counter(v)))
            continue
        text = read_file(v, path)
        if text is not None:
            out.append(text)
            continue
        status = 1
        errs.append(f"cat: can't open '{path}': No such file or directory")
    return Result(status, _lines(out), _lines(errs))


def _tool(fn: Callable[[GuestView, list[str]], tuple[int, str, str]]) -> Command:
    def run(v: GuestView, args: list[str]) -> Result:
        return Result(*fn(v, args))

    return run


def _counter(v: GuestView) -> int:
    start = v.guest.counter_start or 0.0
    return int((v.guest.runtime - start) / 0.1)


def _hvlab_counter(v: GuestView, args: list[str]) -> tuple[int, str]:
    if args == ["start"]:
        v.guest.counter_start = v.guest.runtime
        return 0, "started\n"
    if args == ["read"]:
        if v.guest.counter_start is None:
            return 1, f"cat: can't open '{_COUNTER_FILE}': No such file or directory\n"
        return 0, f"{_counter(v)}\n"
    return 2, "usage: hvlab-counter start|read\n"


def _hvlab_pattern(v: GuestView, args: list[str]) -> tuple[int, str]:
    mode = args[0] if args else ""
    if mode == "write" and len(args) == 3 and args[1].isdigit():
        mib, seed = int(args[1]), args[2]
        base = v.pattern_base()
        npages = mib * MiB // PAGE_SIZE
        if base + npages > v.memory.pages:
            return 1, "head: write error: No space left on device\n"
        version = v.memory.write(base, base + npages)
        v.guest.pattern = {"mib": mib, "seed": seed, "base": base, "version": version}
        return 0, pattern_md5(mib, seed) + "\n"
    if mode == "check":
        p = v.guest.pattern
        if p is None:
            return 1, f"sh: can't open {_PATTERN_FILE}: no such file\n"
        base, npages = int(p["base"]), int(p["mib"]) * MiB // PAGE_SIZE
        seen = v.memory.slice(base, base + npages)
        if {ver for _, _, ver in seen} == {int(p["version"])}:
            return 0, pattern_md5(int(p["mib"]), str(p["seed"])) + "\n"
        return 0, hashlib.md5(repr(seen).encode()).hexdigest() + "\n"
    return 2, "usage: hvlab-pattern write|check MIB SEED\n"


_COMMANDS: dict[str, Command] = {
    "true": _true,
    ":": _true,
    "false": _false,
    "echo": _echo,
    "uname": _uname,
    "grep": _grep,
    "cat": _cat,
    "date": _tool(guest_files.date),
    "lsblk": _tool(guest_files.lsblk),
    "md5sum": _tool(guest_files.md5sum),
    "hvlab-counter": _hvlab_counter,
    "hvlab-pattern": _hvlab_pattern,
    "ip": _tool(guest_tools.ip),
    "ping": _tool(guest_tools.ping),
}

"""A writer for the cpio "newc" format the Linux initramfs loader reads.

Written here so building a guest needs no root (device nodes are just headers) and no
external cpio tool. Format: linux Documentation/driver-api/early-userspace/buffer-format.rst.
"""

from __future__ import annotations

import stat


class CpioWriter:
    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._ino = 1

    def _entry(
        self,
        name: str,
        mode: int,
        data: bytes = b"",
        rdev: tuple[int, int] = (0, 0),
        nlink: int = 1,
    ) -> None:
        encoded = name.encode() + b"\0"
        fields = (
            self._ino,
            mode,
            0,
            0,
            nlink,
            0,
            len(data),
            0,
            0,
            rdev[0],
            rdev[1],
            len(encoded),
            0,
        )
        self._ino += 1
        header = b"070701" + b"".join(f"{v:08X}".encode() for v in fields)
        self._parts.append(header + encoded)
        self._pad()
        self._parts.append(data)
        self._pad()

    def _pad(self) -> None:
        size = sum(len(p) for p in self._parts)
        if size % 4:
            self._parts.append(b"\0" * (4 - size % 4))

    def directory(self, name: str, perm: int = 0o755) -> None:
        self._entry(name, stat.S_IFDIR | perm, nlink=2)

    def file(self, name: str, data: bytes, perm: int = 0o644) -> None:
        self._entry(name, stat.S_IFREG | perm, data)

    def symlink(self, name: str, target: str) -> None:
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def char_device(self, name: str, major: int, minor: int, perm: int = 0o600) -> None:
        self._entry(name, stat.S_IFCHR | perm, rdev=(major, minor))

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        return b"".join(self._parts)

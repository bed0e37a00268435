"""Give a namespace lab host its own /tmp and ~/.cache, then exec its sshd.

Run by ``ip netns exec`` (which already gave the process a private mount namespace):

    python3 hostinit.py TMP_DIR CACHE_DIR -- /usr/sbin/sshd -D ...

Two lab hosts then share no files where hvlab keeps state (run folders and sockets
under /tmp, staged images under ~/.cache), as two machines would not: whatever the
host needs must come over SSH. Standard library and util-linux's mount only.
"""

from __future__ import annotations

import os
import subprocess
import sys


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        sys.stderr.write("usage: hostinit.py TMP_DIR CACHE_DIR -- COMMAND...\n")
        return 2
    tmp, cache, command = argv[0], argv[1], argv[3:]
    home_cache = os.path.expanduser("~/.cache")
    os.makedirs(home_cache, exist_ok=True)
    # ~/.cache first: both sources live under the real /tmp, which the second bind hides
    for source, target in ((cache, home_cache), (tmp, "/tmp")):
        subprocess.run(["mount", "--bind", source, target], check=True)
    os.execv(command[0], command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

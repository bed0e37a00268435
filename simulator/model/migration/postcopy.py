"""Post-copy page requests (migration/postcopy-ram.c, ram.c ram_save_queue_pages).

After the switch the guest runs on the destination. A vCPU touching a page that has not
arrived faults (userfaultfd), the destination asks the source for it on the return path
and the vCPU waits until UFFDIO_COPY places it: one ``postcopy-requests`` count and one
round trip (``Host.postcopy_fault_s``) of that vCPU's time. The source sends the page at
once and then continues its background scan *from that page*
(ram_find_and_save_block keeps last_page = the queued page's position), in ascending
address order, faster than a guest writes. So a cyclic writer faults once per jump to a
physical range the stream has not reached, not once per page: within a run of
ascending pages the stream stays ahead. A random writer can fault on every touch. In
both, a touch faults only if its page is still pending (the share of the working set
not yet received).
"""

from __future__ import annotations

import math

from simulator.model.memory import DirtyPattern, Workload
from simulator.model.units import BUFFER_DELAY


def window_requests(
    w: Workload,
    pending_share: float,
    dt: float,
    fault_s: float,
    first: int = 0,
    stream_pages: float = math.inf,
) -> float:
    """Expected page requests in ``dt`` seconds of guest run time.

    ``pending_share``: share of the working set not received yet. The writer's rate is
    reduced by its own waits: with f faults per touched page, a touch costs
    1/r + f * fault_s seconds. ``first``: the vCPU count in the window right after the
    switch, else 0: there each vCPU faults at once on its kernel stack and per-CPU data
    (dirty when it stopped), and the writer's first touch is a jump too (the stream
    starts at the bottom of RAM, not where the writer is). ``stream_pages``: what the
    stream sends from a faulted page on in one window (max-postcopy-bandwidth; inf for
    none); when that is below what the writer covers in a window, a cyclic writer runs
    out of received pages after that many and faults again, however long its run.
    """
    rate = w.effective_rate(0)
    if rate <= 0 or dt <= 0 or pending_share <= 0:
        return float(first)
    per_touch = pending_share
    if w.pattern is DirtyPattern.CYCLIC:
        ahead = stream_pages if stream_pages < rate * BUFFER_DELAY else math.inf
        per_touch /= max(1.0, min(w.mean_run(), ahead))
    touches = dt / (1.0 / rate + per_touch * fault_s)
    return touches * per_touch + (first + pending_share if first else 0.0)

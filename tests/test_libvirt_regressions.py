"""The widened differential's dimensions on the model, as libvirt 9.0 answered them.

Each case is one scenario of ``generate(5000, 1601)`` (the long run's seed) with the
verdict real libvirt 9.0 gave in that run, recorded here so the model cannot drift.
"""

from __future__ import annotations

import pytest

from harness.libvirt.differential import run_model
from simulator.libvirt.generator import generate
from simulator.libvirt.masking import mask

_SEED_1601 = generate(5000, 1601)

# --- regression cases from the seed-1601 differential run against libvirt 9.0 ------
# (index into generate(5000, 1601), accepted, code, domain, masked message,
#  source (exists, state, reason, persistent), destination (the same))
REAL_1601 = [
    (
        505,
        False,
        49,
        18,
        "Storage pool not found: no storage pool with matching target path '<path>'",
        (True, 3, 1, False),
        (False, 0, 0, False),
    ),
    (
        1075,
        False,
        84,
        10,
        "Operation not supported: pre-creation of storage targets for incremental storage "
        "migration is not supported",
        (True, 3, 1, False),
        (False, 0, 0, False),
    ),
    (
        1373,
        False,
        82,
        10,
        "numerical overflow: bandwidth must be less than <n>",
        (True, 3, 1, False),
        (False, 0, 0, False),
    ),
    (
        1498,
        False,
        38,
        7,
        "unable to connect to server at '<addr>': Connection refused",
        (True, 3, 1, False),
        (True, 1, 1, False),
    ),
    (
        1665,
        False,
        74,
        10,
        "argument unsupported: migration URI is not supported by tunnelled migration",
        (True, 3, 1, False),
        (True, 5, 0, True),
    ),
    (
        2752,
        False,
        9,
        20,
        "operation failed: domain 'hvlab-fz' already exists with uuid <uuid>",
        (True, 3, 1, False),
        (True, 5, 0, True),
    ),
    (
        3953,
        False,
        1,
        10,
        "internal error: Attempt to migrate guest to the same host <uuid>",
        (True, 3, 1, False),
        (False, 0, 0, False),
    ),
    (
        1985,
        False,
        9,
        20,
        "operation failed: domain 'hvlab-fz' is already defined with uuid <uuid>",
        (True, 3, 1, False),
        (False, 0, 0, False),
    ),
    (
        3688,
        False,
        38,
        18,
        "Cannot access storage file '<path>': No such file or directory",
        (True, 3, 1, False),
        (False, 0, 0, False),
    ),
    (
        712,
        False,
        55,
        10,
        "Requested operation is not valid: domain 'hvlab-fz' is not being migrated",
        (True, 3, 1, False),
        (False, 0, 0, False),
    ),
    (
        913,
        False,
        8,
        10,
        "invalid argument: missing host in migration URI: <uri>",
        (True, 3, 1, False),
        (False, 0, 0, False),
    ),
    (
        1292,
        False,
        74,
        10,
        "argument unsupported: unsupported scheme bogus in migration URI <uri>",
        (True, 3, 1, False),
        (False, 0, 0, False),
    ),
    (
        1723,
        False,
        8,
        10,
        "invalid argument: disk target vda not found",
        (True, 3, 1, False),
        (False, 0, 0, False),
    ),
    (
        2974,
        False,
        8,
        10,
        "invalid argument: Compression method 'xbzrle' is specified twice",
        (True, 3, 1, False),
        (False, 0, 0, False),
    ),
    (
        2461,
        False,
        8,
        10,
        "invalid argument: Unsupported scheme in disks URI: bogus",
        (True, 1, 1, False),
        (False, 0, 0, False),
    ),
    (
        548,
        False,
        78,
        10,
        "operation aborted: job 'migration out' canceled by client",
        (True, 1, 1, False),
        (False, 0, 0, False),
    ),
    (3368, True, 0, 0, "", (True, 3, 1, False), (True, 5, 0, True)),
    (4689, True, 0, 0, "", (False, 0, 0, False), (True, 1, 2, True)),
    (
        686,
        False,
        82,
        10,
        "numerical overflow: migration parameter 'bandwidth.postcopy' must be less than <n>",
        (True, 3, 1, False),
        (False, 0, 0, False),
    ),
    (
        3529,
        False,
        8,
        10,
        "invalid argument: NBD URI must be supplied when migration URI uses UNIX transport method",
        (True, 3, 1, False),
        (False, 0, 0, False),
    ),
]


@pytest.mark.parametrize(
    ("index", "accepted", "code", "domain", "message", "source", "dest"),
    REAL_1601,
    ids=[str(c[0]) for c in REAL_1601],
)
def test_widened_dimensions_as_libvirt_9_0(
    index: int,
    accepted: bool,
    code: int,
    domain: int,
    message: str,
    source: tuple[bool, int, int, bool],
    dest: tuple[bool, int, int, bool],
) -> None:
    """Verified (each case alone on fresh simulated hosts, as real libvirt 9.0 answered
    it in the seed-1601 run: storage pre-creation, mirror speed, unreachable daemon,
    tunnelled parameters, name and UUID conflicts, the same host, a missing image,
    resume checks, migration and disks URIs, migrate_disks, compression given twice,
    abort during the job, persistence kept by an existing definition):
    1. Accepted or refused with libvirt's error code and domain.
    2. The same error text once variable parts are masked.
    3. Both hosts show the domain with the same state, reason and persistence.
    """
    scenario = _SEED_1601[index]
    verdict = run_model([scenario])[0]
    assert (verdict.accepted, verdict.code, verdict.domain) == (accepted, code, domain)
    assert mask(verdict.message) == message
    for side, want in ((verdict.source, source), (verdict.dest, dest)):
        assert side is not None
        assert (side.exists, side.state, side.reason, side.persistent) == want

"""The fidelity benchmark: real QEMU 7.2 migrations against the simulator's predictions.

``matrix``: the configurations (what a user sets and knows in advance); ``real``: one
migration between two local QEMU processes with the guest's hvlab-stress, query-migrate
every 50 ms and the heartbeat read from both consoles; ``layout``: where the guest's
non-zero pages are (a dump of guest RAM before the migration); ``simulate``: the same
configuration through the model with only what a user knows in advance plus host
constants calibrated on the idle configuration (``calibrate``); ``guestperf``: every run,
real or simulated, as a report in the format of QEMU's tests/migration/guestperf;
``score``: figures, errors, geometric means and the physical invariants; ``plots``: real
vs simulated remaining-RAM curves. ``bench/fidelity.py`` (``hvlab bench fidelity``)
drives them.
"""

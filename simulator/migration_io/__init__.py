"""Migration and snapshot I/O of one simulator process, around the model's pure engines.

- :mod:`.component`: :class:`MigrationIO`, the one object :class:`SimProcess` owns.
- :mod:`.outgoing`: ``migrate tcp:|unix:|exec:``: the model's pre-checks, the connect,
  the configuration exchange, the model's engine towards a stand-in for the peer.
- :mod:`.sender` / :mod:`.receiver`: the two ends of one stream (:mod:`simulator.transport`
  frames it).
- :mod:`.snapshot_files`: ``migrate file:DIR`` and ``-incoming file:DIR``.
- :mod:`.view`: what all of them need from the process, as a protocol.
"""

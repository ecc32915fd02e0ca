"""Load tool for Tidings and its peer servers (loopback only).

Run ``python -m benchmarks --help``. The package is split by job:
``leanclient`` (one Socket.IO connection, wire protocol by hand), ``fleet`` (many
clients in one event loop), ``pool`` (fleets in worker processes), ``sender``
(open-loop HTTP creation), ``servermon`` (server RSS/CPU), ``report`` (figures),
``scenarios`` (what a run does), ``peers`` (reference servers to compare with).
"""

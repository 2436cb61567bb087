"""The benchmark: ``python -m bench`` (see docs/performance.md).

Every server runs as a subprocess on a free 127.0.0.1 port, is warmed up,
measured with Debian's ``wrk`` and stopped by its pid; every load loop is
bounded in time. Results go to bench/results/ and docs/performance.md.
"""

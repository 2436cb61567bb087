"""The benchmark: ``python -m bench`` (docs/performance.md says what its figures mean).

Every server runs as a subprocess on a free 127.0.0.1 port, is warmed up,
loaded with Debian's ``wrk`` and always stopped by its pid. The bench writes
its figures only, to bench/results/: bench.json, bench.png and figures.md.
It reaches the project's code through bench/project.py alone.
"""

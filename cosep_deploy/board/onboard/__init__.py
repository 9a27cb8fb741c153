"""The on-board side of a Jetson bundle: builds and benchmarks the engines on the board itself.

Everything in this package runs on the board with the board's own Python (3.8 and newer: JetPack 5 ships
3.8, JetPack 6 3.10, JetPack 7 3.12) and the standard library only, next to JetPack's trtexec. A bundle
carries a copy of this folder as ``cosep_onboard/``; ``python3 -m cosep_onboard`` (what
``build_and_bench.sh`` runs) builds dense and pruned engines, times them interleaved, records the power
mode, clocks and tegrastats, writes a manifest per engine and ``results/board.json``, and prints the
speed-up per precision and batch. The host package imports the parsers from here too, so board and host
read the tools' outputs the same way. ``tests/board`` checks the whole package parses as Python 3.8.
"""

ONBOARD_SCHEMA_VERSION = 1
__all__ = ["ONBOARD_SCHEMA_VERSION"]

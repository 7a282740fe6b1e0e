"""`shammah-tui bench`: the performance suite and the learning streams, on this machine.

Every ratio compares two things measured in the same run, interleaved, so a noisy shared machine
moves both sides alike. Nothing here is asserted: the numbers are printed (a table, or one JSON
object) and can be saved with the machine's description under bench/results/.
"""

from shammah_tui.benchmark.suite import run_bench

__all__ = ["run_bench"]

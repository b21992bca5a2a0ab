"""A process that claims a run folder as soon as all its siblings are ready (tests/test_faults.py).

Its own module, importing nothing heavy, so that spawned processes start in a fraction of a second.
"""

from linreg.run_folders import claim


def claim_after(barrier, logdir, results) -> None:
    barrier.wait()  # all at once
    results.put(claim(logdir).name)

"""The market simulator: seasons of football, racing or two-way games with a known truth.

Team and runner strengths drift over time, results are drawn from the true probabilities, and
bookmakers quote noisy, margined prices (see :mod:`betting.simulate.bookmakers`). Because the
truth is stored on every selection, any model can be scored against the floor (log loss of the
true probabilities) and against the market (margin-free closing odds)::

    from betting.simulate import simulate
    batch = simulate("football", seasons=3, seed=7)
"""

from betting.simulate.core import SPORTS, SimulationConfig, run_simulation, simulate

__all__ = ["SPORTS", "SimulationConfig", "run_simulation", "simulate"]

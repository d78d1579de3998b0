"""`choose`: which fold to deploy. Train (or reuse) a model at f = 1..4, measure each one's test top-1 and its
images/s on this machine's best backend, and recommend the largest fold within a tolerated accuracy drop.

Above train and infer in the layering: nothing in the core imports it.
"""

from ._frontier import Candidate, Choice, pareto_frontier, recommend
from ._plot import plot_frontier
from ._runs import choose_fold

__all__ = ["Candidate", "Choice", "choose_fold", "pareto_frontier", "plot_frontier", "recommend"]

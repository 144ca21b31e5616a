"""harness: an offline leaderboard for recommender systems.

The public plugin contract lives in :mod:`harness.api`; everything else is the tool itself.
"""

__version__ = "0.1.0"

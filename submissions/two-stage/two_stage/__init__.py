"""A two-stage recommender packaged as a harness plugin (entry point ``two-stage``)."""

from two_stage.model import TwoStageRecommender

__all__ = ["TwoStageRecommender"]

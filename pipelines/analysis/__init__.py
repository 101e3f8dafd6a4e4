"""From the store to protected figures: the follow-up's aggregates, the evaluation sample and
estimators, and disclosure control.
"""

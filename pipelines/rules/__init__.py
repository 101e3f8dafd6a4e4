"""The rules of domain-rules.md: indicators (eligibility, meritvärde), identity numbers, the
programme's published reference figures.
"""

"""Fraud scoring: a pipeline of checks on each attributed conversion, assessments and the review queue.

Filled in by the rewards-and-fraud issue; conversions already carry the inputs (IP hash, user agent, payment and
address fingerprints).
"""

"""Gradeflow's engine: models, policies, state machines, routing and rules. No Flask request code."""

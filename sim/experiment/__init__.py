"""Experiments above one run: sweeps, replications, the results store (to come)."""

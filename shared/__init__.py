"""Shared library for the paper replications: models, kernels, data, training, evaluation."""

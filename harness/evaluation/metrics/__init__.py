"""Metrics over per-example model outputs (logits): each function names its source.

Every metric here takes tensors or arrays of logits and labels gathered in one batched
inference pass per model (see `mu_bench.evaluation`); none runs a model itself.
"""

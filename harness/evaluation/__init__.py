"""Evaluation: the one inference pass per model (`inference`), every metric computed
from its logits (`scoring`, over the published definitions in `metrics/`), and one
catalogue of metric names, directions and labels (`catalogue`).
"""

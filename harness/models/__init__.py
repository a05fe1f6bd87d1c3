"""Models: one registry of architectures (`registry`), their typed parameters
(`params`), the torch modules behind them (`networks`) and the plain-data `ModelSpec`
that names one. Loading a scenario imports no torch; building a model does.
"""

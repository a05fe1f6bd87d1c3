"""Data: dataset builders, the forget split, tensor sets for methods, augmentation.

`registry` builds a scenario's `Dataset` from its `[data]` section; `forget` draws the
forget set from its `[forget]` section; `split.Split` is the tensor set a method
batches over. Nothing here imports torch or a dataset library until data is built.
"""

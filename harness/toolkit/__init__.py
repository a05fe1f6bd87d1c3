"""What methods and the harness share to train models: the recipe (`recipe`), the
training and inference loops (`training`), mixed precision on CUDA (`accel`), stages of
any architecture (`layers`), the true Fisher diagonal (`fisher`), per-sample gradients
(`grads`) and the pieces the SGD baselines share (`sgd`). Plugins reach these through
`mu_bench.api`.
"""

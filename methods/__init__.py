"""Built-in unlearning methods. Each registers through the `mu_bench.methods` entry-point
group in pyproject.toml, exactly as a third party's plugin does."""

"""`python -m mu_bench` is `mu-bench`."""

from .cli import main

main()

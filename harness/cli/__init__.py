"""The `mu-bench` command line: one command per verb, one module per command group.

`app.py` holds the typer application and the options the commands share; each command
module registers its verbs on it; `main.py` imports them all and maps errors to exit
codes (`mu_bench.cli.main:main` is the console script).
"""

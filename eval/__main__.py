"""`python -m eval` runs the evaluation (the same command as `rag eval`)."""

from eval.cli import eval_command

eval_command()

"""`python -m keras_pgen COMMAND [--flag=value ...]`: the same as `keras-pgen COMMAND ...` (keras_pgen/cli.py)."""
from keras_pgen import cli

if __name__ == "__main__":
    cli.main(prog="python -m keras_pgen")

"""keras_pgen.data."""

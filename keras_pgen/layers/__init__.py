"""keras_pgen.layers."""

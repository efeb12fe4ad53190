"""keras_pgen.models."""

"""keras_pgen.metrics."""

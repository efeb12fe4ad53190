"""keras_pgen.networks."""

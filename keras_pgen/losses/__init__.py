"""keras_pgen.losses."""

"""Method configs: one file per method with get_config(preset)."""

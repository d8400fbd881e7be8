"""Training configs: one file per named config (`--config=NAME`); _base.py holds the fields."""

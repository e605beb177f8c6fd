"""AddonStack (bootstrap: the full surface is being written)."""
__version__ = "0.1.0"

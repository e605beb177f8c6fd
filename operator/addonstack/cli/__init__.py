"""The addonstack command line."""

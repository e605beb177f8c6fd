"""Renderers: one plan, several targets (Compose, Kubernetes, skills, proxy config)."""

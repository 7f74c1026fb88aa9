"""Manifests: strict loading, schema and semantic validation, and the typed model."""

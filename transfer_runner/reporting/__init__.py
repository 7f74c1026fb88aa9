"""Reporters: console, JSON, JUnit, markdown, diagnostics."""

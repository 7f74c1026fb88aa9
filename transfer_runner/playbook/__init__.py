"""Playbooks: the ordered task lists, their loading and templating (SPEC §5)."""

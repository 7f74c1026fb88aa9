"""Playbooks: the ordered task lists, their loading and templating
(README: "The playbook and how to adapt it")."""

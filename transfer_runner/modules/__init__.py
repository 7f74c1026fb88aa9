"""Built-in step modules, one file per family (ticket, account, data, domain, billing)."""

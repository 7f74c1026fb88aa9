"""Built-in step modules, one file per family (ticket, account, data, domain, billing), with
what every module shares: the context a task sees (`context`) and idempotency keys (`keys`)."""

"""The platform REST API: wire encoding, the `sandbox serve` server and the `http` adapter."""

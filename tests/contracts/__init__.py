"""Contract suites: one set of tests per port, run against every backend of that port.

A backend's test module provides the factory fixture the suite asks for and imports the
suite's tests (`from tests.contracts.state_store import *`); tests of what only one backend
does stay in that backend's own module.
"""

"""The platform contract's workflows, with schemathesis' stateful phase, against `sandbox serve`.

The contract's OpenAPI links say which reply feeds which request: a new account's id into the
operations on accounts (its domains, stores, subscription, credits, charges, cancellation), a
ticket into its comments, a message listing into fetches, a credit or charge into the look-up by
its key. `schema.as_state_machine()` walks them: each scenario starts at an operation that
creates or finds something (with realistic data, `contract_support.realistic`) and follows links
from its replies, every reply judged by the same checks as the other phases
(`contract_support.CHECKS`). The seed is fixed (Hypothesis' derandomize), the scenarios and their
steps are bounded, and the walk must reach the core logic: every operation a link leads to must
answer a success at least once, not only 404s.

The server's state is outside Hypothesis' control, so a choice it replays may meet another
state and Hypothesis ends the run as flaky; as in `schemathesis run`, that ends a round, and
rounds go on until SCENARIOS scenarios ran. A check failure is recorded when it happens, so no
replay can hide it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import requests
from hypothesis.errors import Flaky
from schemathesis.core.failures import FailureGroup
from schemathesis.engine.errors import is_inconsistent_replay

from tests.integration.contract_support import contract, realistic, served
from transfer_runner.platforms.http.server import SandboxServer

pytestmark = [pytest.mark.integration]

SCENARIOS = 200  # in all; each a Hypothesis example of up to STEPS requests
STEPS = 12
ROUNDS = 8  # at most: a round ends early only when a replay diverges

schema = realistic(contract("positive", SCENARIOS, ("stateful",), stateful_steps=STEPS))
Workflows = schema.as_state_machine()


def _linked(spec: dict[str, Any]) -> set[str]:
    """The operationIds some link of the contract leads to."""
    return {
        link["operationId"]
        for item in spec["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict)
        for response in operation.get("responses", {}).values()
        for link in response.get("links", {}).values()
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    with served(tmp_path_factory.mktemp("stateful")) as running:
        yield running


def test_the_contracts_workflows_hold(server: SandboxServer) -> None:
    replies: Counter[tuple[str, int]] = Counter()
    failures: list[str] = []
    scenarios = 0
    session = requests.Session()
    session.trust_env = False  # loopback only: no proxy from the environment

    class Machine(Workflows):  # type: ignore[misc, valid-type]
        def setup(self) -> None:
            nonlocal scenarios
            scenarios += 1

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": server.url, "session": session}

        def after_call(self, response: Any, case: Any) -> None:
            super().after_call(response, case)
            replies[(case.operation.definition.raw["operationId"], response.status_code)] += 1

        def validate_response(self, response: Any, case: Any, *args: Any, **kwargs: Any) -> None:
            try:
                super().validate_response(response, case, *args, **kwargs)
            except FailureGroup as exc:
                failures.append(f"{case.method} {case.formatted_path}: {exc}")
                raise

    with session:
        for _ in range(ROUNDS):
            try:
                Machine.run(
                    settings=hypothesis.settings(
                        max_examples=SCENARIOS - scenarios,
                        stateful_step_count=STEPS,
                        derandomize=True,  # the fixed seed
                        deadline=None,
                        database=None,
                        phases=[hypothesis.Phase.generate],
                        suppress_health_check=list(hypothesis.HealthCheck),
                    )
                )
            except Exception as exc:
                if not (isinstance(exc, Flaky) or is_inconsistent_replay(exc)) or failures:
                    raise
            if scenarios >= SCENARIOS or failures:
                break
    assert not failures, "\n\n".join(failures)
    assert scenarios >= SCENARIOS, f"only {scenarios} scenarios in {ROUNDS} rounds"
    succeeded = {operation for (operation, status), _ in replies.items() if status < 300}
    missed = _linked(schema.raw_schema) - succeeded
    assert not missed, f"no link led to a success of {sorted(missed)}: {sorted(replies.items())}"

"""Every fault-matrix scenario as a test: a full orchestrated run with the fault injected, judged by the
invariants (nothing lost, nothing duplicated, every partition accounted for with the right status, `_SUCCESS`
only for a complete run, no secret or token value anywhere) plus the scenario's own evidence that the fault
really happened. `python -m faultmatrix` prints the same scenarios as a table."""

from __future__ import annotations

import pytest

from faultmatrix.lab import Lab
from faultmatrix.matrix import run_scenario
from faultmatrix.scenarios import Scenario, all_scenarios

pytestmark = pytest.mark.slow


def _param(scenario: Scenario) -> object:
    marks = [pytest.mark.quick] if scenario.quick else []
    return pytest.param(scenario, id=scenario.name, marks=marks)


@pytest.mark.parametrize("scenario", [_param(s) for s in all_scenarios()])
async def test_scenario_meets_every_invariant(lab: Lab, scenario: Scenario) -> None:
    result = await run_scenario(lab, scenario)
    assert result.passed, "\n".join([f"{scenario.name}: {scenario.title}", *result.verdict.problems,
                                     f"evidence: {result.evidence}"])

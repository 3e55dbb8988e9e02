"""The functions of a v2 app as the Python worker indexes them: orchestrators and activities by name.

Built from `app.get_functions()` (the same call the worker makes at load), so a function that is not
registered in function_app.py cannot run locally either.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import azure.functions as func
from azure.functions import meta
from azure.functions.durable_functions import ActivityTriggerConverter

from localrun.replay import OrchestratorFn

ActivityFn = Callable[..., Any]


class UnknownFunctionError(LookupError):
    """Raised for a name that is not an orchestrator / activity of the app (the extension answers 400)."""


@dataclass(frozen=True, slots=True)
class Activity:
    name: str
    binding_name: str
    function: ActivityFn

    async def invoke(self, input_json: str | None) -> str:
        """Decode the input, call the function and encode the result exactly as the worker's converter does."""
        argument = None
        if input_json is not None:
            argument = ActivityTriggerConverter.decode(meta.Datum(type="json", value=input_json), trigger_metadata={})
        result = self.function(**{self.binding_name: argument})
        if inspect.isawaitable(result):
            result = await result
        encoded = ActivityTriggerConverter.encode(result, expected_type=None)
        return str(encoded.value)


@dataclass(slots=True)
class FunctionIndex:
    orchestrators: dict[str, OrchestratorFn] = field(default_factory=dict)
    activities: dict[str, Activity] = field(default_factory=dict)
    bindings: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def from_app(cls, app: func.FunctionRegister) -> FunctionIndex:
        """Index the app; resets the app's name registry first because get_functions() is not idempotent."""
        app.functions_bindings = None
        index = cls()
        for function in app.get_functions():
            name = str(function.get_function_name())
            index.bindings[name] = json.loads(function.get_function_json())["bindings"]
            trigger = function.get_trigger()
            user = function.get_user_function()
            if trigger is None:
                continue
            if trigger.type == "orchestrationTrigger":
                index.orchestrators[name] = user.orchestrator_function  # type: ignore[attr-defined]
            elif trigger.type == "activityTrigger":
                index.activities[name] = Activity(name=name, binding_name=trigger.name, function=user)
        app.functions_bindings = None
        return index

    def orchestrator(self, name: str) -> OrchestratorFn:
        try:
            return self.orchestrators[name]
        except KeyError:
            raise UnknownFunctionError(
                f"The function '{name}' doesn't exist, is disabled, or is not an orchestrator function."
            ) from None

    def activity(self, name: str) -> Activity:
        try:
            return self.activities[name]
        except KeyError:
            raise UnknownFunctionError(
                f"The function '{name}' doesn't exist, is disabled, or is not an activity function."
            ) from None

    def with_activities(self, replacements: Mapping[str, Callable[[Any], Any | Awaitable[Any]]]) -> FunctionIndex:
        """A copy where some activities run other code: for orchestrator tests that script activity outcomes."""
        activities = dict(self.activities)
        for name, function in replacements.items():
            binding = self.activity(name).binding_name
            activities[name] = Activity(name=name, binding_name=binding,
                                        function=lambda _f=function, _b=binding, **kw: _f(kw[_b]))
        return FunctionIndex(dict(self.orchestrators), activities, dict(self.bindings))

"""App settings for a local run: from the local stack's env file, or from a file of real settings."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from devstack.env import StackEnv

# Host-only settings in a local.settings.json that the engine does not read.
_HOST_ONLY = frozenset({"FUNCTIONS_WORKER_RUNTIME", "AzureWebJobsStorage", "AzureWebJobsFeatureFlags"})


def stack_app_settings(env: StackEnv) -> dict[str, str]:
    """What Bicep would set in Azure, pointed at the emulators; the workload identity stands in for the app's
    managed identity through EnvironmentCredential (ARCHITECTURE.md)."""
    if env.graph_url is None:
        raise ValueError("the local stack runs without the Graph emulator; start it without --no-graph")
    return {
        "GRAPH_TENANT_IDS": env.tenant_id,
        "GRAPH_CLIENT_ID": env.graph_app.client_id,
        "GRAPH_CREDENTIAL_TYPE": "secret",
        "KEY_VAULT_URL": env.key_vault_url,
        "GRAPH_CLIENT_SECRET_NAME": env.graph_app.client_secret_name,
        "GRAPH_CERTIFICATE_SECRET_NAME": env.graph_app.certificate_secret_name,
        "GRAPH_AUTHORITY_HOST": env.authority_host,
        "GRAPH_ENDPOINT": env.graph_url,
        "CA_BUNDLE": env.ca_bundle,
        "OUTPUT_ACCOUNT_URL": env.blob_account_url,
        **env.workload_environment(),
    }


def read_settings_file(path: Path) -> dict[str, str]:
    """A JSON object of settings, a `local.settings.json` (its `Values`), or KEY=VALUE lines (.env)."""
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise ValueError(f"--settings {path}: cannot read it ({exc.strerror})") from None
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--settings {path}: not valid JSON ({exc})") from None
        if isinstance(data.get("Values"), dict):
            data = data["Values"]
        bad = [k for k, v in data.items() if not isinstance(v, str | int | float | bool)]
        if bad:
            raise ValueError(f"--settings {path}: {', '.join(bad)} must be strings (app settings are strings)")
        values = {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in data.items()}
    else:
        values = {}
        for number, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, sep, value = line.removeprefix("export ").partition("=")
            if not sep or not key.strip():
                raise ValueError(f"--settings {path}:{number}: expected KEY=VALUE")
            values[key.strip()] = value.strip().strip("'\"")
    return {k: v for k, v in values.items() if k not in _HOST_ONLY}


@contextlib.contextmanager
def applied(settings: Mapping[str, str]) -> Iterator[None]:
    """Export settings into this process's environment (where the activities read them), then restore it."""
    saved = {key: os.environ.get(key) for key in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

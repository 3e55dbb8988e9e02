"""The local runner as a user runs it: `python -m localrun ...` in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from localrun.settings import stack_app_settings
from tests.conftest import RunningStack
from tests.engine.conftest import unique

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def localrun(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "160", "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "localrun", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


def test_run_with_a_settings_file_against_the_stack(stack: RunningStack, tmp_path: Path) -> None:
    settings = {**stack_app_settings(stack.env), "OUTPUT_CONTAINER": unique("cli").lower()}
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"IsEncrypted": False, "Values": settings}))
    done = localrun("run", "--settings", str(path), "--streams", "users,groups,group_member")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for stream in ("users", "groups", "group_member"):
        assert f"│ {stream} " in out
    assert "mail_messages" not in out
    assert "_SUCCESS written" in out and f"/{settings['OUTPUT_CONTAINER']}/graph/{stack.env.tenant_id}/" in out


def test_bad_options_are_reported_before_anything_runs(stack: RunningStack, tmp_path: Path) -> None:
    path = tmp_path / "settings.env"
    path.write_text("\n".join(f"{k}={v}" for k, v in stack_app_settings(stack.env).items()))
    done = localrun("run", "--settings", str(path), "--streams", "users,nope", "--start-time", "soon")
    assert done.returncode != 0
    assert "streams: unknown stream(s) nope" in done.stderr and "start_time:" in done.stderr
    missing = localrun("run", "--settings", str(tmp_path / "absent.json"))
    assert missing.returncode == 2 and "cannot read it" in missing.stdout


def test_a_run_nobody_can_sign_in_for_says_how_to_sign_in(stack: RunningStack, tmp_path: Path) -> None:
    """The identity that reads the vault and writes the lake is refused (here: a wrong secret): one line of
    reason and the fix, not the SDK's list of every credential it tried or an activity's stack trace."""
    settings = {**stack_app_settings(stack.env), "OUTPUT_CONTAINER": unique("cli").lower(),
                "AZURE_CLIENT_SECRET": "not-the-secret"}
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"IsEncrypted": False, "Values": settings}))
    done = localrun("run", "--settings", str(path), "--streams", "users")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "ClientAuthenticationError" in done.stdout and "az login" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    assert "not-the-secret" not in done.stdout + done.stderr


def test_demo_starts_syncs_and_stops_its_own_stack(tmp_path: Path) -> None:
    done = localrun("demo", "--state-dir", str(tmp_path / "demo"), "--throttle", "off",
                    "--streams", "users,mail_messages,chats,chat_messages")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "stack up: tenant" in out and "stopping the local stack" in out
    assert "│ chat_messages " in out and "_SUCCESS written" in out
    assert "MailboxNotEnabledForRESTAPI" in out  # the demo tenant's users without a mailbox are reported
    assert "processes still running" not in out


def test_settings_prints_local_settings_for_a_running_stack(stack: RunningStack, tmp_path: Path) -> None:
    done = localrun("settings", "--env-file", str(stack.process.env_file))
    assert done.returncode == 0, done.stderr
    values = json.loads(done.stdout)["Values"]
    assert values["GRAPH_TENANT_IDS"] == stack.env.tenant_id and values["FUNCTIONS_WORKER_RUNTIME"] == "python"
    assert values["GRAPH_ENDPOINT"] == stack.env.graph_url and values["CA_BUNDLE"] == stack.env.ca_bundle
    absent = localrun("settings", "--env-file", str(tmp_path / "none.env"))
    assert absent.returncode == 2 and "python -m devstack up" in absent.stdout

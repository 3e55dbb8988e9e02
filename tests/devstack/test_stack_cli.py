"""`python -m devstack up` argument handling, without starting anything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devstack.__main__ import _options, build_parser
from devstack.env import StackEnv
from devstack.stack import StackOptions
from devstack.tenant import TenantSizes


def options(*argv: str) -> StackOptions:
    return _options(build_parser().parse_args(["up", *argv]))


def test_defaults_are_the_demo_tenant_with_throttling() -> None:
    opts = options()
    assert opts.sizes == TenantSizes.demo() and opts.throttle == "on" and opts.state_dir is None
    assert opts.graph and opts.azurite and opts.token_lifetime_seconds is None


def test_size_preset_overrides_and_throttle_scale(tmp_path: Path) -> None:
    opts = options("--size", "small", "--users", "30", "--mailbox-skew", "0.5", "--throttle", "0.1",
                   "--state-dir", str(tmp_path), "--token-lifetime", "120", "--seed", "9")
    assert opts.sizes.users == 30 and opts.sizes.mailbox_skew == 0.5
    assert opts.sizes.groups == TenantSizes.small().groups
    assert opts.throttle == 0.1 and opts.state_dir == tmp_path and opts.token_lifetime_seconds == 120
    assert opts.seed == 9
    assert options("--throttle", "off").throttle == "off"


@pytest.mark.parametrize("argv", [["--throttle", "fast"], ["--throttle", "0"], ["--users", "many"]])
def test_bad_arguments_name_the_option(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        options(*argv)
    assert argv[0] in capsys.readouterr().err


def test_inconsistent_sizes_explain_the_fix() -> None:
    with pytest.raises(SystemExit, match="guests"):
        options("--users", "2", "--guests", "5")
    with pytest.raises(SystemExit, match="unknown tenant size preset"):
        options("--size", "huge")


def test_env_file_round_trip_and_bad_shape(tmp_path: Path) -> None:
    data = {
        "tenant_id": "t", "ca_bundle": "/ca.pem", "authority_host": "https://127.0.0.1:1", "graph_url": None,
        "graph_admin_url": None, "key_vault_url": "https://127.0.0.1:2", "blob_account_url": "b",
        "storage_connection_string": "c",
        "graph_app": {"client_id": "a", "client_secret_name": "s", "certificate_secret_name": "c",
                      "certificate_thumbprint": "T"},
        "workload_identity": {"client_id": "w", "client_secret": "x"}, "pid": 1, "entra_admin_url": "e",
        "key_vault_admin_url": "k", "queue_account_url": "q", "table_account_url": "t", "azurite_pid": None,
        "state_dir": "/s",
    }
    env = StackEnv.from_json(data)
    path = tmp_path / "sub" / "devstack.env"
    env.write(path)
    assert StackEnv.load(path) == env
    assert path.stat().st_mode & 0o077 == 0
    assert env.workload_environment()["AZURE_AUTHORITY_HOST"] == "https://127.0.0.1:1"
    path.write_text(json.dumps({**data, "graph_app": {"client_id": "a"}}))
    with pytest.raises(ValueError, match="restart `python -m devstack up`"):
        StackEnv.load(path)

"""Permission derivation from the stream catalog and the Azure CLI commands of the registration (never executed)."""

from __future__ import annotations

import io
import json
import re
import shlex
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from scripts import az_commands as az
from scripts import azd_hook
from scripts.graph_permissions import (
    APP_ROLE_IDS,
    GRAPH_RESOURCE_APP_ID,
    Grant,
    SelectionError,
    application_permission,
    parse_stream_selection,
    required_grants,
)
from scripts.register_graph_app import (
    DryRunRunner,
    Options,
    RegistrationError,
    main,
    run,
    self_signed_certificate,
    split_pem,
    store_credential,
)
from shared.streams import CATALOG, parent_chain

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def permissions(streams: str) -> dict[str, tuple[str, ...]]:
    return {g.permission: g.streams for g in required_grants(parse_stream_selection(streams))}


class Recorder:
    """Answers like `az` would (canned stdout per command prefix) and records every command line."""

    dry_run = False

    def __init__(self, answers: dict[tuple[str, ...], str] | None = None) -> None:
        self.answers = answers or {}
        self.commands: list[tuple[str, ...]] = []

    def run(self, command: az.AzCommand) -> str:
        self.commands.append(command.argv)
        for prefix, answer in self.answers.items():
            if command.argv[: len(prefix)] == prefix:
                return answer
        return ""


def test_app_role_table_is_well_formed() -> None:
    assert all(GUID.match(v) for v in APP_ROLE_IDS.values())
    assert len(set(APP_ROLE_IDS.values())) == len(APP_ROLE_IDS), "one id per permission"
    assert APP_ROLE_IDS["User.Read.All"] == "df021288-bdef-4463-88db-98f22de89214"
    # Delegated-only names must not be requested as application permissions.
    assert "Group.ReadBasic.All" not in APP_ROLE_IDS and "Calendars.ReadBasic" not in APP_ROLE_IDS


def test_every_catalog_stream_has_a_grantable_application_permission() -> None:
    for spec in CATALOG.values():
        chosen = application_permission(spec)
        assert chosen in spec.permissions and chosen in APP_ROLE_IDS


def test_all_streams_need_one_permission_per_workload_and_nothing_broader() -> None:
    grants = permissions("all")
    listed = {p for spec in CATALOG.values() for p in spec.permissions}
    assert set(grants) <= listed, "only permissions the catalog names"
    assert "Directory.Read.All" not in grants and "Sites.Read.All" not in grants, "broader alternatives unused"
    # Chat.Read.All (needed by chat_messages) also covers chats, so Chat.ReadBasic.All is not requested as well;
    # GroupMember.Read.All (the least /groups/delta takes) covers groups, members and owners: no Group.Read.All.
    assert "Chat.ReadBasic.All" not in grants and "Group.Read.All" not in grants
    assert set(grants["GroupMember.Read.All"]) == {"groups", "group_member", "group_owner"}
    assert set(grants["Chat.Read.All"]) == {"chats", "chat_messages"}
    every_stream = {s for streams in grants.values() for s in streams}
    assert every_stream == set(CATALOG)


def test_child_streams_bring_their_parents_permission() -> None:
    assert permissions("mail_messages") == {
        "Mail.ReadBasic.All": ("mail_messages",), "User.Read.All": ("mail_messages",),
    }
    assert permissions("drive_items") == {"Files.Read.All": ("drive_items",), "User.Read.All": ("drive_items",)}
    assert [s.name for s in parent_chain("drive_items")] == ["users", "drives"]
    assert permissions("channels") == {"Channel.ReadBasic.All": ("channels",), "Team.ReadBasic.All": ("channels",)}


def test_least_privileged_choice_when_nothing_broader_is_needed() -> None:
    assert permissions("chats") == {"Chat.ReadBasic.All": ("chats",), "User.Read.All": ("chats",)}
    assert permissions("group_member") == {"GroupMember.Read.All": ("group_member",)}
    assert permissions("users, applications") == {
        "Application.Read.All": ("applications",), "User.Read.All": ("users",),
    }


@pytest.mark.parametrize(
    ("selection", "message"),
    [("", "SYNC_STREAMS is empty"), ("users,mailbox", "unknown stream(s) mailbox; valid: users,")],
)
def test_bad_stream_selection_names_the_setting_and_the_fix(selection: str, message: str) -> None:
    with pytest.raises(SelectionError, match=re.escape(message)):
        parse_stream_selection(selection)


def test_a_stream_with_only_delegated_permissions_is_refused() -> None:
    delegated_only = replace(CATALOG["groups"], permissions=("Group.ReadBasic.All",))
    with pytest.raises(SelectionError, match="lists no Graph application permission"):
        required_grants(["groups"], {"groups": delegated_only})


def test_permission_command_marks_every_role_as_application_permission() -> None:
    grants = required_grants(["users", "contacts"])
    command = az.add_permissions("app-1", grants)
    assert command.argv[:8] == ("az", "ad", "app", "permission", "add", "--id", "app-1", "--api")
    assert command.argv[8] == GRAPH_RESOURCE_APP_ID
    assert command.argv[9] == "--api-permissions"
    assert list(command.argv[10:]) == [f"{APP_ROLE_IDS[p]}=Role" for p in ("Contacts.Read", "User.Read.All")]
    with pytest.raises(ValueError, match="no permissions"):
        az.add_permissions("app-1", [])


def test_commands_round_trip_through_the_shell() -> None:
    command = az.secret_exists("kv-1", "graph-client-secret")
    assert tuple(shlex.split(command.shell())) == command.argv
    assert az.admin_consent_url("tid", "app", "usgov") == "https://login.microsoftonline.us/tid/adminconsent?client_id=app"


def test_managed_identity_role_grant_body() -> None:
    grant = Grant("User.Read.All", APP_ROLE_IDS["User.Read.All"], ("users",))
    command = az.grant_app_role("mi-oid", "graph-sp-oid", grant, "china")
    uri = command.argv[command.argv.index("--uri") + 1]
    assert uri == "https://microsoftgraph.chinacloudapi.cn/v1.0/servicePrincipals/mi-oid/appRoleAssignments"
    body = json.loads(command.argv[command.argv.index("--body") + 1])
    assert body == {"principalId": "mi-oid", "resourceId": "graph-sp-oid", "appRoleId": grant.app_role_id}


def test_dry_run_prints_the_whole_plan_and_runs_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--dry-run", "--streams", "users,contacts", "--vault-name", "kv-1", "--display-name", "lake"])
    printed = capsys.readouterr().out
    assert code == 0
    commands = [line for line in printed.splitlines() if line.startswith("az ")]
    assert [shlex.split(c)[:4] for c in commands] == [
        ["az", "ad", "app", "list"], ["az", "ad", "app", "create"], ["az", "ad", "sp", "list"],
        ["az", "ad", "sp", "create"], ["az", "ad", "app", "permission"], ["az", "keyvault", "secret", "list"],
        ["az", "ad", "app", "credential"], ["az", "keyvault", "secret", "set"],
    ]
    assert "adminconsent?client_id=<appId>" in printed
    assert f"{APP_ROLE_IDS['Contacts.Read']}=Role {APP_ROLE_IDS['User.Read.All']}=Role" in printed
    assert "GRAPH_CLIENT_ID=<appId>" in printed


def test_list_permissions_and_error_exit(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list-permissions", "--streams", "audit_logs_signins"]) == 0
    assert "AuditLog.Read.All" in capsys.readouterr().out
    assert main(["--list-permissions", "--streams", "nope"]) == 2
    assert "unknown stream(s) nope" in capsys.readouterr().err


def test_existing_app_is_reused_and_consent_is_granted_when_asked() -> None:
    recorder = Recorder({("az", "ad", "app", "list"): "existing-app", ("az", "ad", "sp", "list"): "sp-1"})
    out = io.StringIO()
    app_id = run(Options(streams="users", admin_consent=True, tenant_id="t", credential="none"), recorder, out)
    assert app_id == "existing-app"
    verbs = [c[:4] for c in recorder.commands]
    assert ("az", "ad", "app", "create") not in verbs and ("az", "ad", "sp", "create") not in verbs
    assert recorder.commands[-1] == ("az", "ad", "app", "permission", "admin-consent", "--id", "existing-app")


def test_two_apps_with_the_same_name_stop_the_script() -> None:
    recorder = Recorder({("az", "ad", "app", "list"): "a\nb"})
    with pytest.raises(RegistrationError, match="2 app registrations are named"):
        run(Options(streams="users", credential="none"), recorder, io.StringIO())


def test_secret_reaches_the_vault_through_a_private_file_never_argv(tmp_path: Path) -> None:
    seen: dict[str, str] = {}

    class Capturing(Recorder):
        def run(self, command: az.AzCommand) -> str:
            if command.argv[:4] == ("az", "keyvault", "secret", "set"):
                path = Path(command.argv[command.argv.index("--file") + 1])
                seen["content"] = path.read_text()
                seen["mode"] = oct(path.stat().st_mode & 0o777)
                seen["path"] = str(path)
            return super().run(command)

    recorder = Capturing({("az", "ad", "app", "credential", "reset"): "s3cr3t-value"})
    out = io.StringIO()
    name = store_credential(Options(vault_name="kv-1"), "app-1", recorder, out)
    assert name == "graph-client-secret"
    assert seen["content"] == "s3cr3t-value" and seen["mode"] == "0o600"
    assert not Path(seen["path"]).exists(), "the temporary file is deleted"
    assert all("s3cr3t-value" not in arg for command in recorder.commands for arg in command)
    assert "s3cr3t-value" not in out.getvalue()


def test_existing_vault_secret_is_kept_unless_rotating() -> None:
    recorder = Recorder({("az", "keyvault", "secret", "list"): "https://kv-1/secrets/graph-client-secret"})
    store_credential(Options(vault_name="kv-1"), "app-1", recorder, io.StringIO())
    assert [c[:4] for c in recorder.commands] == [("az", "keyvault", "secret", "list")]
    rotating = Recorder({("az", "keyvault", "secret", "list"): "x", ("az", "ad", "app", "credential"): "pw"})
    store_credential(Options(vault_name="kv-1", rotate=True), "app-1", rotating, io.StringIO())
    assert rotating.commands[-1][:4] == ("az", "keyvault", "secret", "set")


def test_storing_a_credential_needs_the_vault_name() -> None:
    with pytest.raises(RegistrationError, match="--vault-name is required"):
        store_credential(Options(vault_name=None), "app-1", Recorder(), io.StringIO())


def test_certificate_route_uploads_only_the_public_part() -> None:
    uploaded: dict[str, bytes] = {}

    class Capturing(Recorder):
        def run(self, command: az.AzCommand) -> str:
            for arg in command.argv:
                if arg.startswith("@"):
                    uploaded["cert"] = Path(arg[1:]).read_bytes()
            if "--file" in command.argv:
                uploaded["vault"] = Path(command.argv[command.argv.index("--file") + 1]).read_bytes()
            return super().run(command)

    store_credential(Options(vault_name="kv-1", credential="certificate"), "app-1", Capturing(), io.StringIO())
    assert b"PRIVATE KEY" not in uploaded["cert"]
    x509.load_pem_x509_certificate(uploaded["cert"])
    assert b"PRIVATE KEY" in uploaded["vault"] and b"CERTIFICATE" in uploaded["vault"]


def test_self_signed_certificate_pairs_key_and_certificate() -> None:
    bundle, public = self_signed_certificate("m365-lake", 1)
    cert = x509.load_pem_x509_certificate(public)
    key = load_pem_private_key(bundle, password=None)
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()  # type: ignore[union-attr]
    assert split_pem(bundle) == public
    with pytest.raises(RegistrationError, match="private key and the certificate"):
        split_pem(public)


def test_hook_options_come_from_the_azd_environment() -> None:
    opts = azd_hook.options_from_env({
        "AZURE_ENV_NAME": "prod", "SYNC_STREAMS": "users", "KEY_VAULT_NAME": "kv-9", "GRAPH_CLIENT_ID": "app-9",
        "GRAPH_CREDENTIAL_TYPE": "certificate", "GRAPH_ADMIN_CONSENT": "true", "AZURE_TENANT_ID": "t-9",
    })
    assert (opts.display_name, opts.streams) == ("m365-lake-prod", "users")
    assert (opts.vault_name, opts.app_id) == ("kv-9", "app-9")
    assert (opts.credential, opts.admin_consent, opts.tenant_id) == ("certificate", True, "t-9")
    with pytest.raises(RegistrationError, match="GRAPH_CREDENTIAL_TYPE='pfx'"):
        azd_hook.options_from_env({"GRAPH_CREDENTIAL_TYPE": "pfx"})


def test_preprovision_registers_and_records_the_client_id() -> None:
    recorder = Recorder({("az", "ad", "app", "create"): "new-app", ("az", "account", "show"): "t"})
    azd_hook.preprovision({"AZURE_ENV_NAME": "dev", "SYNC_STREAMS": "users"}, recorder, io.StringIO())
    assert recorder.commands[-1] == ("azd", "env", "set", "GRAPH_CLIENT_ID", "new-app")
    assert not any(c[:3] == ("az", "keyvault", "secret") for c in recorder.commands), "no vault before provisioning"
    again = Recorder()
    azd_hook.preprovision({"GRAPH_CLIENT_ID": "new-app"}, again, io.StringIO())
    assert again.commands == []


def test_postprovision_grants_managed_identity_roles_once() -> None:
    role = {"value": "User.Read.All", "id": APP_ROLE_IDS["User.Read.All"]}
    graph_sp = json.dumps({"id": "graph-sp", "appRoles": [role]})
    recorder = Recorder({
        ("az", "ad", "sp", "show"): graph_sp,
        ("az", "rest", "--method", "GET"): APP_ROLE_IDS["User.Read.All"],
    })
    env = {
        "GRAPH_CREDENTIAL_TYPE": "managed_identity", "AZURE_MANAGED_IDENTITY_PRINCIPAL_ID": "mi",
        "SYNC_STREAMS": "users",
    }
    azd_hook.postprovision(env, recorder, io.StringIO())
    assert not any(c[:4] == ("az", "rest", "--method", "POST") for c in recorder.commands), "already granted"
    fresh = Recorder({("az", "ad", "sp", "show"): graph_sp})
    azd_hook.postprovision(env, fresh, io.StringIO())
    assert sum(c[:4] == ("az", "rest", "--method", "POST") for c in fresh.commands) == 1


def test_role_id_verification_reports_a_mismatch() -> None:
    role = {"value": "User.Read.All", "id": "00000000-0000-0000-0000-000000000000"}
    recorder = Recorder({("az", "ad", "sp", "show"): json.dumps({"id": "g", "appRoles": [role]})})
    with pytest.raises(RegistrationError, match=re.escape("User.Read.All: table df021288")):
        run(Options(streams="users", verify_role_ids=True, credential="none"), recorder, io.StringIO())


def test_dry_run_runner_prints_instead_of_running() -> None:
    out = io.StringIO()
    assert DryRunRunner(out).run(az.create_app("x")) == "<appId>"
    assert out.getvalue().startswith("# create the single-tenant app registration 'x'\naz ad app create")


def test_hook_wrapper_runs_the_hook_with_the_project_python(tmp_path: Path) -> None:
    import os
    import subprocess

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "AZURE_ENV_NAME": "ci", "SYNC_STREAMS": "contacts", "GRAPH_CREDENTIAL_TYPE": "secret"}
    env.pop("GRAPH_CLIENT_ID", None)
    done = subprocess.run([str(root / "scripts" / "azd-hook.sh"), "preprovision", "--dry-run"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "Contacts.Read" in done.stdout and "User.Read.All" in done.stdout
    assert done.stdout.rstrip().endswith("azd env set GRAPH_CLIENT_ID '<appId>'")
    bad = subprocess.run([str(root / "scripts" / "azd-hook.sh"), "deploy"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120, check=False)
    assert bad.returncode == 2 and "usage:" in bad.stderr

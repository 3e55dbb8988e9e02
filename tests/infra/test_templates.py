"""What infra/ declares: resources, security defaults, role assignments, app settings vs the config model, azd wiring.

The Bicep CLI is not available offline, so these tests read the syntax trees (tree-sitter-bicep) and assert the
declarations themselves.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import get_args

import pathspec
import pytest
import yaml

from shared.config import CLOUDS, SETTINGS, SETTINGS_BY_NAME, CredentialType, OutputFormat

from .bicep import BicepFile, Expr, Resource, object_keys, role_assignments
from .checks import (
    app_insights_violations,
    app_setting_name_violations,
    secret_violations,
    site_violations,
    storage_violations,
    vault_violations,
)
from .conftest import INFRA, ROOT

# Built-in role definition ids (identical in every subscription).
BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
QUEUE_DATA_CONTRIBUTOR = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
TABLE_DATA_CONTRIBUTOR = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
KV_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
KV_SECRETS_OFFICER = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
MONITORING_METRICS_PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"

STORAGE = "Microsoft.Storage/storageAccounts"
CONTAINER = "Microsoft.Storage/storageAccounts/blobServices/containers"
VAULT = "Microsoft.KeyVault/vaults"
COMPONENT = "Microsoft.Insights/components"


def all_resources(templates: dict[str, BicepFile], resource_type: str) -> list[tuple[BicepFile, Resource]]:
    return [(f, r) for f in templates.values() for r in f.of_type(resource_type)]


def single(templates: dict[str, BicepFile], resource_type: str) -> Resource:
    found = [r for _, r in all_resources(templates, resource_type) if not r.existing]
    assert len(found) == 1, f"expected one {resource_type}, found {[r.symbol for r in found]}"
    return found[0]


def test_every_template_parses_without_error_or_missing_nodes(templates: dict[str, BicepFile]) -> None:
    assert set(templates) == {
        "main.bicep", "app/api.bicep", "app/identity.bicep", "app/monitoring.bicep", "app/host-storage.bicep",
        "app/datalake.bicep", "app/datalake-container.bicep", "app/keyvault.bicep",
    }
    problems = [p for f in templates.values() for p in f.problems()]
    assert problems == []


def test_main_targets_the_subscription_with_an_azd_tagged_resource_group(templates: dict[str, BicepFile]) -> None:
    main = templates["main.bicep"]
    assert main.target_scope == "subscription"
    rg = main.resources["rg"]
    assert rg.type == "Microsoft.Resources/resourceGroups"
    tags = main.resolve(rg.body["tags"])
    assert isinstance(tags, dict) and isinstance(tags["azd-env-name"], Expr)
    assert tags["azd-env-name"].text == "environmentName"
    token = main.variables["resourceToken"]
    assert isinstance(token, Expr)
    assert token.text.replace(" ", "") == "toLower(uniqueString(subscription().id,environmentName,location))"


def test_resource_names_use_known_abbreviations(templates: dict[str, BicepFile]) -> None:
    abbreviations = json.loads((INFRA / "abbreviations.json").read_text())
    main_text = (INFRA / "main.bicep").read_text()
    used = set(re.findall(r"abbrs\.(\w+)", main_text))
    assert used, "resource names are built from abbreviations.json"
    assert used <= set(abbreviations), f"unknown abbreviations: {used - set(abbreviations)}"
    loaded = templates["main.bicep"].variables["abbrs"]
    assert isinstance(loaded, Expr) and loaded.function == "loadJsonContent" and loaded.args == ["./abbreviations.json"]


def test_modules_exist_and_receive_exactly_their_parameters(templates: dict[str, BicepFile]) -> None:
    checked = 0
    for name, bicep in templates.items():
        for module in bicep.modules.values():
            assert not module.source.startswith("br:") and not module.source.startswith("br/"), (
                f"{name}:{module.symbol} uses a registry module; declare raw resources so tests can see them"
            )
            target = (INFRA / name).parent / module.source
            assert target.is_file(), f"{name}:{module.symbol} -> {module.source} does not exist"
            callee = templates[target.relative_to(INFRA).as_posix()]
            unknown = set(module.params) - set(callee.params)
            missing = {p.name for p in callee.params.values() if not p.has_default} - set(module.params)
            assert not unknown and not missing, f"{name}:{module.symbol} unknown {unknown} missing {missing}"
            checked += 1
    assert checked >= 8


def test_parameters_file_matches_main_bicep(templates: dict[str, BicepFile]) -> None:
    main = templates["main.bicep"]
    document = json.loads((INFRA / "main.parameters.json").read_text())
    values = {name: entry["value"] for name, entry in document["parameters"].items()}
    assert set(values) <= set(main.params), f"not declared in main.bicep: {set(values) - set(main.params)}"
    required = {p.name for p in main.params.values() if not p.has_default}
    assert required <= set(values), f"required parameters without a value: {required - set(values)}"
    assert values["environmentName"] == "${AZURE_ENV_NAME}"
    assert values["location"] == "${AZURE_LOCATION}"
    assert values["principalId"] == "${AZURE_PRINCIPAL_ID}"
    for name, value in values.items():
        match = re.fullmatch(r"\$\{(\w+)(?:=(.*))?\}", value)
        assert match, f"{name}: value {value!r} is not an azd ${{VAR}} reference"
        if match.group(2) is not None:
            assert main.params[name].default == match.group(2), f"{name}: azd default differs from Bicep default"


def test_flex_consumption_plan_and_function_app(templates: dict[str, BicepFile]) -> None:
    api = templates["app/api.bicep"]
    plan = single(templates, "Microsoft.Web/serverfarms")
    assert plan.body["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan.properties["reserved"] is True
    site = single(templates, "Microsoft.Web/sites")
    assert site.body["kind"] == "functionapp,linux"
    tags = site.body["tags"]
    assert isinstance(tags, Expr) and tags.function == "union" and {"azd-service-name": "api"} in tags.args
    config = site.properties["functionAppConfig"]
    assert isinstance(config, dict)
    runtime = config["runtime"]
    assert runtime["name"] == "python"
    assert isinstance(runtime["version"], Expr)
    version_param = api.params[runtime["version"].text]
    assert version_param.decorators["allowed"] == [[f"{sys.version_info.major}.{sys.version_info.minor}"]]
    scale = config["scaleAndConcurrency"]
    memory = api.params[scale["instanceMemoryMB"].text]
    assert set(memory.decorators["allowed"][0]) <= {512, 2048, 4096} and memory.default in (512, 2048, 4096)
    instances = api.params[scale["maximumInstanceCount"].text]
    assert instances.decorators["minValue"][0] >= 40 and instances.decorators["maxValue"][0] <= 1000
    assert scale["alwaysReady"] == [{"name": "durable", "instanceCount": 1}]
    storage = config["deployment"]["storage"]
    assert storage["type"] == "blobContainer"
    assert storage["authentication"]["type"] == "UserAssignedIdentity"
    assert storage["authentication"]["userAssignedIdentityResourceId"].text == "identityId"
    assert "userAssignedIdentities" in site.body["identity"]
    policy_type = "Microsoft.Web/sites/basicPublishingCredentialsPolicies"
    policies = {r.body["name"]: r.properties for r in api.of_type(policy_type)}
    assert policies == {"ftp": {"allow": False}, "scm": {"allow": False}}


def test_security_defaults(templates: dict[str, BicepFile]) -> None:
    accounts = [r for _, r in all_resources(templates, STORAGE) if not r.existing]
    assert len(accounts) == 2, "host storage and data lake"
    assert [v for r in accounts for v in storage_violations(r)] == []
    lake = templates["app/datalake.bicep"].resources["lake"]
    assert lake.properties["isHnsEnabled"] is True
    containers = [r for _, r in all_resources(templates, CONTAINER)]
    assert containers and all(r.properties.get("publicAccess") == "None" for r in containers)
    vault = single(templates, VAULT)
    assert vault_violations(vault) == []
    assert vault.properties["softDeleteRetentionInDays"] >= 7
    assert site_violations(single(templates, "Microsoft.Web/sites")) == []
    insights = single(templates, COMPONENT)
    assert app_insights_violations(insights) == []
    assert isinstance(insights.properties["WorkspaceResourceId"], Expr), "App Insights is workspace-based"


def test_role_assignments_are_exactly_what_the_app_needs(templates: dict[str, BicepFile]) -> None:
    found = [a for f in templates.values() for a in role_assignments(f)]
    summary = sorted((a.role_id or "?", a.scope_type or "?", str(a.principal_type)) for a in found)
    app = "ServicePrincipal"
    assert summary == sorted([
        (BLOB_DATA_OWNER, STORAGE, app),
        (QUEUE_DATA_CONTRIBUTOR, STORAGE, app),
        (TABLE_DATA_CONTRIBUTOR, STORAGE, app),
        (BLOB_DATA_CONTRIBUTOR, CONTAINER, app),
        (KV_SECRETS_USER, VAULT, app),
        (MONITORING_METRICS_PUBLISHER, COMPONENT, app),
        (KV_SECRETS_OFFICER, VAULT, "Expr(text='deployerPrincipalType', kind='identifier')"),
    ])
    for a in found:
        assert isinstance(a.name, Expr) and a.name.function == "guid", f"{a.symbol}: name must be guid(...)"
        assert a.scope_symbol is not None and a.scope_symbol in a.name.text, f"{a.symbol}: name must include scope"
        assert isinstance(a.principal, Expr) and a.principal.text in a.name.text, f"{a.symbol}: name needs principal"
    host = {a.role_id for a in found if a.file.name == "host-storage.bicep"}
    assert host == {BLOB_DATA_OWNER, QUEUE_DATA_CONTRIBUTOR, TABLE_DATA_CONTRIBUTOR}
    officer = next(a for a in found if a.role_id == KV_SECRETS_OFFICER)
    assert officer.condition is not None and "deployerPrincipalId" in officer.condition.text


def app_settings(templates: dict[str, BicepFile]) -> tuple[set[str], dict[str, object]]:
    """All app setting names the deployment sets, and the product ones with their Bicep values."""
    api = templates["app/api.bicep"]
    (config,) = api.of_type("Microsoft.Web/sites/config")
    assert config.body["name"] == "appsettings"
    platform = object_keys(config.body["properties"], api)
    product = templates["main.bicep"].modules["api"].params["productSettings"]
    assert isinstance(product, dict)
    return platform | set(product), product


def test_app_settings_and_config_model_do_not_drift(templates: dict[str, BicepFile]) -> None:
    names, product = app_settings(templates)
    known = {s.name for s in SETTINGS}
    platform = names - known
    assert all(n.startswith(("AzureWebJobsStorage__", "APPLICATIONINSIGHTS_")) for n in platform), (
        f"settings unknown to shared.config.SETTINGS: {sorted(n for n in platform if not n.startswith('Azure'))}"
    )
    assert set(product) <= known, f"productSettings unknown to the config model: {set(product) - known}"
    required = {s.name for s in SETTINGS if s.required}
    assert required <= names, f"required settings Bicep does not set: {required - names}"
    assert app_setting_name_violations(names) == []


def test_bicep_defaults_agree_with_the_config_model(templates: dict[str, BicepFile]) -> None:
    main = templates["main.bicep"]
    _, product = app_settings(templates)
    compared = 0
    for name, value in product.items():
        default = SETTINGS_BY_NAME[name].default
        if isinstance(value, Expr) and value.kind == "identifier" and value.text in main.params:
            param = main.params[value.text]
            if default is not None and param.has_default:
                assert param.default == default, f"{name}: Bicep default {param.default!r}, config {default!r}"
                compared += 1
        elif isinstance(value, str) and default is not None:
            assert value == default, f"{name}: Bicep sets {value!r}, config default is {default!r}"
            compared += 1
    assert compared >= 6
    schedule = main.params["syncSchedule"]
    assert schedule.default == SETTINGS_BY_NAME["SYNC_SCHEDULE"].default, "the timer binding reads %SYNC_SCHEDULE%"
    assert main.params["graphCredentialType"].decorators["allowed"] == [list(get_args(CredentialType))]
    assert main.params["outputFormat"].decorators["allowed"] == [list(get_args(OutputFormat))]
    assert set(main.params["graphCloud"].decorators["allowed"][0]) == set(CLOUDS)


def test_identity_based_host_storage_and_entra_telemetry(templates: dict[str, BicepFile]) -> None:
    api = templates["app/api.bicep"]
    platform = api.variables["platformSettings"]
    assert isinstance(platform, dict)
    assert platform["AzureWebJobsStorage__credential"] == "managedidentity"
    assert platform["AzureWebJobsStorage__clientId"].text == "identityClientId"
    for service in ("blob", "queue", "table"):
        uri = api.resolve(platform[f"AzureWebJobsStorage__{service}ServiceUri"])
        assert isinstance(uri, Expr) and f".{service}.${{storageSuffix}}'" in uri.text
    suffix = api.variables["storageSuffix"]
    assert isinstance(suffix, Expr) and suffix.text == "environment().suffixes.storage", "sovereign-cloud safe"
    auth = platform["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"]
    assert isinstance(auth, Expr) and auth.text == "'ClientId=${identityClientId};Authorization=AAD'"
    assert platform["AZURE_CLIENT_ID"].text == "identityClientId"
    config = api.resources["appSettings"].body["properties"]
    assert isinstance(config, Expr) and config.text.replace(" ", "").endswith("platformSettings)"), (
        "platform settings merge last so product settings cannot override the identity wiring"
    )


def test_no_secret_in_any_output_or_app_setting(templates: dict[str, BicepFile]) -> None:
    violations = [
        v for f in templates.values() for out in f.outputs.values()
        for v in secret_violations(f, f"{f.path.name}:{out.name}", out.value)
    ]
    api = templates["app/api.bicep"]
    for name, value in {**api.variables["platformSettings"], **app_settings(templates)[1]}.items():
        violations += secret_violations(api, f"app setting {name}", value)
    assert violations == []
    assert not any(p.secure for f in templates.values() for p in f.params.values()), "no secret parameters"


def test_outputs_cover_what_the_hooks_read(templates: dict[str, BicepFile]) -> None:
    outputs = set(templates["main.bicep"].outputs)
    hook = (ROOT / "scripts" / "azd_hook.py").read_text()
    read = set(re.findall(r"env\.get\(\"([A-Z_]+)\"", hook)) | set(re.findall(r"env\[\"([A-Z_]+)\"\]", hook))
    produced_by_azd_or_user = {
        "AZURE_ENV_NAME", "GRAPH_CLIENT_ID", "GRAPH_CREDENTIAL_TYPE", "GRAPH_REGISTER_APP", "GRAPH_ADMIN_CONSENT",
        "GRAPH_APP_DISPLAY_NAME", "GRAPH_APP_TENANT_ID", "GRAPH_CLOUD", "SYNC_STREAMS",
    }
    assert read - produced_by_azd_or_user <= outputs, f"hooks read values nobody outputs: {read - outputs}"
    assert {"SERVICE_API_NAME", "KEY_VAULT_NAME", "AZURE_MANAGED_IDENTITY_PRINCIPAL_ID"} <= outputs


def test_azure_yaml_deploys_the_root_as_the_tagged_function_app(templates: dict[str, BicepFile]) -> None:
    document = yaml.safe_load((ROOT / "azure.yaml").read_text())
    assert document["services"] == {"api": {"project": ".", "language": "python", "host": "function"}}
    site = single(templates, "Microsoft.Web/sites")
    assert {"azd-service-name": "api"} in site.body["tags"].args
    for event in ("preprovision", "postprovision"):
        for platform in ("posix", "windows"):
            command = document["hooks"][event][platform]["run"].split()
            script = ROOT / command[0]
            assert script.is_file(), f"{event}/{platform}: {command[0]} does not exist"
            assert command[1] == event
            if platform == "posix":
                assert os.access(script, os.X_OK), f"{script} must be executable"


@pytest.mark.parametrize(
    ("path", "shipped"),
    [
        ("function_app.py", True), ("host.json", True), ("requirements.txt", True), ("shared/config/model.py", True),
        ("orchestrators/sync.py", True), ("activities/partition.py", True),
        ("tests/infra/test_templates.py", False), ("devstack/graph/app.py", False), ("bench/run.py", False),
        ("infra/main.bicep", False), ("scripts/register_graph_app.py", False), ("docs/deployment.md", False),
        ("node_modules/azurite/package.json", False), (".venv/bin/python", False), ("package.json", False),
        ("package-lock.json", False), ("local.settings.json", False), ("shared/__pycache__/x.pyc", False),
        ("requirements-dev.txt", False), ("faultmatrix/matrix.py", False),
    ],
)
def test_funcignore_ships_only_the_app(path: str, shipped: bool) -> None:
    spec = pathspec.PathSpec.from_lines("gitignore", (ROOT / ".funcignore").read_text().splitlines())
    assert spec.match_file(path) is (not shipped)


def test_parameters_are_described(templates: dict[str, BicepFile]) -> None:
    undocumented = [name for name, p in templates["main.bicep"].params.items() if "description" not in p.decorators]
    assert undocumented == []


def test_deployment_guide_names_the_real_commands_and_outputs(templates: dict[str, BicepFile]) -> None:
    guide = (ROOT / "docs" / "deployment.md").read_text()
    for needle in ("azd up", "func azure functionapp publish", "python -m scripts.register_graph_app",
                   "/api/syncs/", "_manifest.json", "admin-consent", "KEY_VAULT_NAME", "Flex Consumption"):
        assert needle in guide, f"docs/deployment.md should mention {needle!r}"
    azd_builtin = {"AZURE_PRINCIPAL_ID", "AZURE_ENV_NAME", "AZURE_LOCATION", "AZURE_SUBSCRIPTION_ID"}
    for name in re.findall(r"`(AZURE_[A-Z_]+|KEY_VAULT_[A-Z_]+|OUTPUT_[A-Z_]+)`", guide):
        known = templates["main.bicep"].outputs.keys() | SETTINGS_BY_NAME.keys() | azd_builtin
        assert name in known, f"docs/deployment.md names {name}, which nothing produces"
    for name in re.findall(r"azd env get-value ([A-Z_]+)", guide):
        assert name in templates["main.bicep"].outputs or name == "GRAPH_CLIENT_ID", f"{name} is not an azd output"
    assert Path(ROOT / "docs" / "deployment.md").stat().st_size > 3000

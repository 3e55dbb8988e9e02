"""The syntax-tree reader and the security rules detect what they claim to (so template tests can fail)."""

from __future__ import annotations

from .bicep import Expr, object_keys, parse_source, role_assignments
from .checks import (
    app_insights_violations,
    app_setting_name_violations,
    secret_violations,
    site_violations,
    storage_violations,
    vault_violations,
)

INSECURE = """
@secure()
param adminKey string

var readerRole = '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'

resource st 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: 'st'
  properties: {
    allowSharedKeyAccess: true
    minimumTlsVersion: 'TLS1_0'
  }
}

resource kv 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: 'kv'
  properties: {
    enableRbacAuthorization: false
    enableSoftDelete: false
    accessPolicies: []
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: 'f'
  identity: { type: 'SystemAssigned' }
  properties: {
    httpsOnly: false
    siteConfig: {
      minTlsVersion: '1.0'
      ftpsState: 'AllAllowed'
      appSettings: []
    }
  }
}

resource ai 'Microsoft.Insights/components@2020-02-02' = {
  name: 'ai'
  kind: 'web'
  properties: {
    Application_Type: 'web'
  }
}

resource wide 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(adminKey)) {
  name: guid(st.id, readerRole)
  scope: st
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', readerRole)
    principalId: 'p'
    principalType: 'User'
  }
}

output conn string = 'DefaultEndpointsProtocol=https;AccountName=st;AccountKey=${st.listKeys().keys[0].value}'
output key string = adminKey
output plain string = 'https://${st.name}.blob.core.windows.net'
"""


def test_a_broken_template_reports_error_and_missing_nodes() -> None:
    broken = parse_source("resource st 'Microsoft.Storage/storageAccounts@2023-05-01' = {\n  name: 'st'\n")
    assert broken.problems(), "an unterminated object must be reported"
    unclosed = parse_source("resource st 'x@1' = {\n  name: 'st'\n}\nvar y = (1\n")
    assert unclosed.problems() == ["<memory>:4:11: missing ) ''"]
    assert parse_source("param x string = 'y'\n").problems() == []
    garbage = parse_source("param = = 3\nresource {\n")
    assert any(":1:" in p for p in garbage.problems()), "problems carry line:column"


def test_reader_extracts_declarations_as_python_values() -> None:
    bicep = parse_source(INSECURE)
    assert bicep.params["adminKey"].secure and not bicep.params["adminKey"].has_default
    st = bicep.resources["st"]
    assert (st.type, st.api_version, st.existing) == ("Microsoft.Storage/storageAccounts", "2023-05-01", False)
    assert st.properties == {"allowSharedKeyAccess": True, "minimumTlsVersion": "TLS1_0"}
    assert bicep.resources["site"].body["identity"] == {"type": "SystemAssigned"}
    assert bicep.resources["wide"].condition is not None
    assert bicep.resolve(Expr("readerRole", "identifier", bicep.root)) == "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
    plain = bicep.outputs["plain"].value
    assert isinstance(plain, Expr) and plain.kind == "string" and "st" in plain.identifiers()


def test_role_assignment_is_resolved_to_guid_scope_and_principal_type() -> None:
    (assignment,) = role_assignments(parse_source(INSECURE))
    assert assignment.role_id == "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
    assert (assignment.scope_symbol, assignment.scope_type) == ("st", "Microsoft.Storage/storageAccounts")
    assert assignment.principal_type == "User"
    assert isinstance(assignment.name, Expr) and assignment.name.function == "guid"


def test_every_security_rule_flags_the_insecure_template() -> None:
    bicep = parse_source(INSECURE)
    assert storage_violations(bicep.resources["st"]) == [
        "st: allowSharedKeyAccess must be false (identity-only access)",
        "st: allowBlobPublicAccess must be false",
        "st: minimumTlsVersion must be 'TLS1_2'",
        "st: supportsHttpsTrafficOnly must be true",
    ]
    assert len(vault_violations(bicep.resources["kv"])) == 4
    assert len(site_violations(bicep.resources["site"])) == 5
    assert app_insights_violations(bicep.resources["ai"])
    conn = secret_violations(bicep, "conn", bicep.outputs["conn"].value)
    assert any("listKeys" in v for v in conn) and any("AccountKey=" in v for v in conn)
    assert secret_violations(bicep, "key", bicep.outputs["key"].value) == ["key: uses @secure() parameter(s) adminKey"]
    assert secret_violations(bicep, "plain", bicep.outputs["plain"].value) == []


def test_app_setting_rules_and_key_collection_through_union_and_variables() -> None:
    bicep = parse_source(
        "var base = { A: 1, 'B-b': 2 }\n"
        "var all = union(base, empty(x) ? { C: 3 } : { D: 4 }, { FUNCTIONS_WORKER_RUNTIME: 'python' })\n"
    )
    keys = object_keys(bicep.variables["all"], bicep)
    assert keys == {"A", "B-b", "C", "D", "FUNCTIONS_WORKER_RUNTIME"}
    assert app_setting_name_violations(keys | {"AzureWebJobsStorage"}) == [
        "app setting FUNCTIONS_WORKER_RUNTIME is not supported on Flex Consumption",
        "app setting AzureWebJobsStorage carries a key; use identity-based settings",
    ]

"""Azure CLI command lines for the Graph app registration, consent and credential steps (pure: builds, never runs).

Kept apart from execution so `--dry-run` prints exactly what would run and tests can check the commands without
an Azure CLI or a tenant. Secrets never appear in a command line (they would show in process listings and shell
history): they travel through a file readable only by the current user.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from scripts.graph_permissions import GRAPH_RESOURCE_APP_ID, Grant

LOGIN_HOSTS = {
    "global": "https://login.microsoftonline.com",
    "usgov": "https://login.microsoftonline.us",
    "usgovdod": "https://login.microsoftonline.us",
    "china": "https://login.chinacloudapi.cn",
}
GRAPH_HOSTS = {
    "global": "https://graph.microsoft.com",
    "usgov": "https://graph.microsoft.us",
    "usgovdod": "https://dod-graph.microsoft.us",
    "china": "https://microsoftgraph.chinacloudapi.cn",
}


@dataclass(frozen=True)
class AzCommand:
    """One `az` invocation and why it runs (the why is printed in dry runs and progress output)."""

    argv: tuple[str, ...]
    purpose: str

    def shell(self) -> str:
        return shlex.join(self.argv)


def find_app(display_name: str) -> AzCommand:
    return AzCommand(
        ("az", "ad", "app", "list", "--display-name", display_name, "--query", "[].appId", "--output", "tsv"),
        f"look for an existing app registration named {display_name!r} (re-runs reuse it)",
    )


def create_app(display_name: str) -> AzCommand:
    return AzCommand(
        ("az", "ad", "app", "create", "--display-name", display_name, "--sign-in-audience", "AzureADMyOrg",
         "--query", "appId", "--output", "tsv"),
        f"create the single-tenant app registration {display_name!r}",
    )


def show_service_principal(app_id: str) -> AzCommand:
    return AzCommand(
        ("az", "ad", "sp", "list", "--filter", f"appId eq '{app_id}'", "--query", "[].id", "--output", "tsv"),
        "check whether the app already has a service principal in this tenant",
    )


def create_service_principal(app_id: str) -> AzCommand:
    return AzCommand(
        ("az", "ad", "sp", "create", "--id", app_id, "--query", "id", "--output", "tsv"),
        "create the app's service principal (admin consent is granted to it)",
    )


def add_permissions(app_id: str, grants: Sequence[Grant]) -> AzCommand:
    """One `permission add` for every app role: `<appRoleId>=Role` marks an application (not delegated) permission."""
    if not grants:
        raise ValueError("no permissions to add: enable at least one stream")
    return AzCommand(
        ("az", "ad", "app", "permission", "add", "--id", app_id, "--api", GRAPH_RESOURCE_APP_ID,
         "--api-permissions", *(f"{g.app_role_id}=Role" for g in grants)),
        "request the Graph application permissions: " + ", ".join(g.permission for g in grants),
    )


def admin_consent(app_id: str) -> AzCommand:
    return AzCommand(
        ("az", "ad", "app", "permission", "admin-consent", "--id", app_id),
        "grant tenant-wide admin consent (needs Privileged Role Administrator or Global Administrator)",
    )


def admin_consent_url(tenant_id: str, app_id: str, cloud: str = "global") -> str:
    """The browser URL an administrator opens to consent when the CLI user cannot."""
    return f"{LOGIN_HOSTS[cloud]}/{tenant_id}/adminconsent?client_id={app_id}"


def graph_app_roles() -> AzCommand:
    """Graph's service principal in the signed-in tenant: its object id and every app role's value and id."""
    return AzCommand(
        ("az", "ad", "sp", "show", "--id", GRAPH_RESOURCE_APP_ID,
         "--query", "{id: id, appRoles: appRoles[].{value: value, id: id}}", "--output", "json"),
        "read Microsoft Graph's service principal id and app roles in this tenant",
    )


def reset_secret(app_id: str, display_name: str, years: int) -> AzCommand:
    """Adds (appends, never replaces) a client secret; the password is captured from stdout, never echoed."""
    return AzCommand(
        ("az", "ad", "app", "credential", "reset", "--id", app_id, "--append", "--display-name", display_name,
         "--years", str(years), "--query", "password", "--output", "tsv"),
        f"add a client secret valid for {years} year(s) to the app registration",
    )


def upload_certificate(app_id: str, certificate_path: str) -> AzCommand:
    return AzCommand(
        ("az", "ad", "app", "credential", "reset", "--id", app_id, "--append", "--cert", f"@{certificate_path}",
         "--output", "none"),
        "add the public certificate to the app registration",
    )


def secret_exists(vault_name: str, secret_name: str) -> AzCommand:
    return AzCommand(
        ("az", "keyvault", "secret", "list", "--vault-name", vault_name,
         "--query", f"[?name=='{secret_name}'].id", "--output", "tsv"),
        f"check whether {secret_name!r} is already in the vault",
    )


def set_secret_from_file(vault_name: str, secret_name: str, path: str, content_type: str) -> AzCommand:
    return AzCommand(
        ("az", "keyvault", "secret", "set", "--vault-name", vault_name, "--name", secret_name, "--file", path,
         "--encoding", "utf-8", "--content-type", content_type, "--output", "none"),
        f"store the Graph credential in Key Vault as {secret_name!r}",
    )


def grant_app_role(principal_object_id: str, graph_sp_object_id: str, grant: Grant, cloud: str = "global") -> AzCommand:
    """Assign one Graph app role to a service principal directly (the managed-identity route has no consent UI)."""
    body = json.dumps(
        {"principalId": principal_object_id, "resourceId": graph_sp_object_id, "appRoleId": grant.app_role_id},
        separators=(",", ":"),
    )
    return AzCommand(
        ("az", "rest", "--method", "POST",
         "--uri", f"{GRAPH_HOSTS[cloud]}/v1.0/servicePrincipals/{principal_object_id}/appRoleAssignments",
         "--headers", "Content-Type=application/json", "--body", body, "--output", "none"),
        f"grant {grant.permission} to the function app's managed identity",
    )


def list_app_role_assignments(principal_object_id: str, cloud: str = "global") -> AzCommand:
    return AzCommand(
        ("az", "rest", "--method", "GET",
         "--uri", f"{GRAPH_HOSTS[cloud]}/v1.0/servicePrincipals/{principal_object_id}/appRoleAssignments",
         "--query", "value[].appRoleId", "--output", "tsv"),
        "list the app roles the managed identity already holds (re-runs skip them)",
    )


def azd_env_set(name: str, value: str) -> AzCommand:
    return AzCommand(("azd", "env", "set", name, value), f"record {name} in the azd environment")

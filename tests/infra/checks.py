"""Security rules for parsed Bicep declarations, returning violations instead of asserting.

The same functions run on the real templates (no violations expected) and on deliberately insecure snippets (the
expected violations must be reported), which proves each rule can fail.
"""

from __future__ import annotations

from .bicep import BicepFile, Expr, Resource, Value

# Settings Flex Consumption rejects or ignores (MicrosoftDocs "Flex Consumption plan deprecations").
FLEX_FORBIDDEN_SETTINGS = frozenset({
    "FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION", "WEBSITE_RUN_FROM_PACKAGE", "WEBSITE_CONTENTSHARE",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING", "SCM_DO_BUILD_DURING_DEPLOYMENT", "ENABLE_ORYX_BUILD",
    "WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT", "WEBSITE_TIME_ZONE", "TZ",
})

# Names that would carry a key or connection string instead of an identity-based connection.
KEYED_SETTINGS = frozenset({"AzureWebJobsStorage", "APPINSIGHTS_INSTRUMENTATIONKEY"})

SECRET_MARKERS = ("AccountKey=", "SharedAccessSignature=", "sig=", "Password=")


def storage_violations(res: Resource) -> list[str]:
    props = res.properties
    found: list[str] = []
    if props.get("allowSharedKeyAccess") is not False:
        found.append(f"{res.symbol}: allowSharedKeyAccess must be false (identity-only access)")
    if props.get("allowBlobPublicAccess") is not False:
        found.append(f"{res.symbol}: allowBlobPublicAccess must be false")
    if props.get("minimumTlsVersion") != "TLS1_2":
        found.append(f"{res.symbol}: minimumTlsVersion must be 'TLS1_2'")
    if props.get("supportsHttpsTrafficOnly") is not True:
        found.append(f"{res.symbol}: supportsHttpsTrafficOnly must be true")
    return found


def vault_violations(res: Resource) -> list[str]:
    props = res.properties
    found: list[str] = []
    if props.get("enableRbacAuthorization") is not True:
        found.append(f"{res.symbol}: enableRbacAuthorization must be true (no access policies)")
    if props.get("enableSoftDelete") is False:
        found.append(f"{res.symbol}: enableSoftDelete must not be false")
    if props.get("enablePurgeProtection") is not True:
        found.append(f"{res.symbol}: enablePurgeProtection must be true")
    if "accessPolicies" in props:
        found.append(f"{res.symbol}: accessPolicies must not be used in RBAC mode")
    return found


def site_violations(res: Resource) -> list[str]:
    props = res.properties
    site_config = props.get("siteConfig", {})
    site_config = site_config if isinstance(site_config, dict) else {}
    found: list[str] = []
    if props.get("httpsOnly") is not True:
        found.append(f"{res.symbol}: httpsOnly must be true")
    if site_config.get("minTlsVersion") not in ("1.2", "1.3"):
        found.append(f"{res.symbol}: siteConfig.minTlsVersion must be 1.2 or higher")
    if site_config.get("ftpsState") != "Disabled":
        found.append(f"{res.symbol}: siteConfig.ftpsState must be 'Disabled'")
    if "appSettings" in site_config:
        found.append(f"{res.symbol}: app settings belong in the single sites/config 'appsettings' resource")
    identity = res.body.get("identity", {})
    if not isinstance(identity, dict) or identity.get("type") != "UserAssigned":
        found.append(f"{res.symbol}: identity.type must be 'UserAssigned'")
    return found


def app_insights_violations(res: Resource) -> list[str]:
    if res.properties.get("DisableLocalAuth") is not True:
        return [f"{res.symbol}: DisableLocalAuth must be true (Entra-only ingestion)"]
    return []


def _calls(value: Value) -> set[str]:
    """Names of every function called anywhere inside `value`."""
    if isinstance(value, dict):
        return set().union(*(_calls(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_calls(v) for v in value)) if value else set()
    if not isinstance(value, Expr):
        return set()
    names: set[str] = set()

    def walk(node: object) -> None:
        from tree_sitter import Node

        assert isinstance(node, Node)
        if node.type == "call_expression":
            fn = node.child_by_field_name("function")
            if fn is not None:
                names.add((fn.text or b"").decode())
        if node.type == "member_expression" and node.named_children:
            # resource.listKeys() style: the called member shows up as a property_identifier
            last = node.named_children[-1]
            if last.type == "property_identifier":
                names.add((last.text or b"").decode())
        for child in node.children:
            walk(child)

    walk(value.node)
    return names


def secret_violations(bicep: BicepFile, where: str, value: Value) -> list[str]:
    """A value that would expose a secret: list*() calls (keys, SAS), @secure() params, key-bearing literals."""
    found: list[str] = []
    listing = sorted(c for c in _calls(value) if c.lower().startswith("list"))
    if listing:
        found.append(f"{where}: calls {', '.join(listing)} (returns keys or secrets)")
    secure = sorted(p.name for p in bicep.params.values() if p.secure)
    identifiers = value.identifiers() if isinstance(value, Expr) else set()
    leaked = [name for name in secure if name in identifiers]
    if leaked:
        found.append(f"{where}: uses @secure() parameter(s) {', '.join(leaked)}")
    text = value.text if isinstance(value, Expr) else str(value)
    found.extend(f"{where}: contains {marker!r}" for marker in SECRET_MARKERS if marker in text)
    return found


def app_setting_name_violations(names: set[str]) -> list[str]:
    found = [f"app setting {n} is not supported on Flex Consumption" for n in sorted(names & FLEX_FORBIDDEN_SETTINGS)]
    found += [f"app setting {n} carries a key; use identity-based settings" for n in sorted(names & KEYED_SETTINGS)]
    return found

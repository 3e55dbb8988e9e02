"""azd hooks (azure.yaml): register the Graph app before provisioning, store its credential after.

azd runs hooks with the environment's values (AZURE_ENV_NAME, outputs such as KEY_VAULT_NAME, and anything set with
`azd env set`) in the process environment. Opt out with `azd env set GRAPH_REGISTER_APP false` and follow the manual
steps in docs/deployment.md instead (for example when someone else owns app registrations in your tenant).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TextIO

from scripts import az_commands as az
from scripts.register_graph_app import (
    CliRunner,
    DryRunRunner,
    Options,
    RegistrationError,
    Runner,
    run,
    store_credential,
)


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = env.get(name, "").strip().lower()
    return default if not value else value in ("1", "true", "yes")


def options_from_env(env: Mapping[str, str]) -> Options:
    credential_type = env.get("GRAPH_CREDENTIAL_TYPE") or "secret"
    if credential_type not in ("secret", "certificate", "managed_identity"):
        raise RegistrationError(
            f"GRAPH_CREDENTIAL_TYPE={credential_type!r} is not one of secret, certificate, managed_identity; "
            "fix it with `azd env set GRAPH_CREDENTIAL_TYPE secret`"
        )
    return Options(
        streams=env.get("SYNC_STREAMS") or "all",
        display_name=env.get("GRAPH_APP_DISPLAY_NAME") or f"m365-lake-{env.get('AZURE_ENV_NAME', 'dev')}",
        app_id=env.get("GRAPH_CLIENT_ID") or None,
        credential="none" if credential_type == "managed_identity" else credential_type,
        vault_name=env.get("KEY_VAULT_NAME") or None,
        admin_consent=_flag(env, "GRAPH_ADMIN_CONSENT", False),
        tenant_id=env.get("GRAPH_APP_TENANT_ID") or env.get("AZURE_TENANT_ID") or None,
        cloud=env.get("GRAPH_CLOUD") or "global",
        managed_identity_principal_id=(
            env.get("AZURE_MANAGED_IDENTITY_PRINCIPAL_ID") if credential_type == "managed_identity" else None
        ),
    )


def preprovision(env: Mapping[str, str], runner: Runner, out: TextIO) -> None:
    """Create the app registration and record GRAPH_CLIENT_ID so Bicep puts it in the app settings."""
    if (env.get("GRAPH_CREDENTIAL_TYPE") or "secret") == "managed_identity":
        print("GRAPH_CREDENTIAL_TYPE=managed_identity: no app registration; the Graph roles are granted to the "
              "managed identity after provisioning.", file=out)
        return
    if env.get("GRAPH_CLIENT_ID"):
        print(f"Using the Graph app registration GRAPH_CLIENT_ID={env['GRAPH_CLIENT_ID']}.", file=out)
        return
    if not _flag(env, "GRAPH_REGISTER_APP", True):
        print("GRAPH_REGISTER_APP=false: register the Graph app by hand (docs/deployment.md), then "
              "`azd env set GRAPH_CLIENT_ID <appId>` and run `azd provision` again.", file=out)
        return
    # The vault does not exist yet: register and request permissions now, store the credential in postprovision.
    opts = options_from_env(env)
    app_id = run(Options(**{**opts.__dict__, "credential": "none"}), runner, out)
    if app_id:
        runner.run(az.azd_env_set("GRAPH_CLIENT_ID", app_id))


def postprovision(env: Mapping[str, str], runner: Runner, out: TextIO) -> None:
    """Put the Graph credential into the new vault (or grant Graph roles to the managed identity)."""
    opts = options_from_env(env)
    if opts.managed_identity_principal_id:
        run(opts, runner, out)
        return
    if opts.credential == "none" or not opts.app_id:
        print("No GRAPH_CLIENT_ID in the azd environment: nothing to store. Set it and run `azd provision` again.",
              file=out)
        return
    store_credential(opts, opts.app_id, runner, out)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] not in ("preprovision", "postprovision"):
        print("usage: python -m scripts.azd_hook preprovision|postprovision [--dry-run]", file=sys.stderr)
        return 2
    runner: Runner = DryRunRunner(sys.stdout) if "--dry-run" in args else CliRunner(sys.stderr)
    try:
        (preprovision if args[0] == "preprovision" else postprovision)(os.environ, runner, sys.stdout)
    except RegistrationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

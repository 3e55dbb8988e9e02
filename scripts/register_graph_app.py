"""Create (or reuse) the Microsoft Graph app registration with exactly the permissions the enabled streams need,
grant admin consent, and put its client secret or certificate into the deployment's Key Vault.

    python -m scripts.register_graph_app --streams all --vault-name kv-abc123 --admin-consent
    python -m scripts.register_graph_app --streams users,groups --dry-run      # print the az commands only
    python -m scripts.register_graph_app --list-permissions                    # what an admin will consent to

With GRAPH_CREDENTIAL_TYPE=managed_identity there is no app registration: `--managed-identity-principal-id` assigns
the same app roles to the function app's identity instead. Requires the Azure CLI (`az login` first); the signed-in
user needs Application Developer (create), Privileged Role Administrator or Global Administrator (consent, role
grants) and Key Vault Secrets Officer on the vault (granted to the deploying user by infra/).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TextIO

from scripts import az_commands as az
from scripts.graph_permissions import Grant, SelectionError, parse_stream_selection, required_grants

DEFAULT_DISPLAY_NAME = "m365-lake"
DEFAULT_SECRET_NAME = "graph-client-secret"  # noqa: S105 (a Key Vault secret name, not a secret)
DEFAULT_CERTIFICATE_NAME = "graph-client-certificate"


class RegistrationError(RuntimeError):
    """A step failed; the message names the step and what to do."""


class Runner(Protocol):
    dry_run: bool

    def run(self, command: az.AzCommand) -> str:
        """Run `command` and return its stdout, stripped."""
        ...


class CliRunner:
    """Runs the Azure CLI. Progress goes to `log`; stdout of a command (which may hold a secret) never does.

    Key Vault calls are retried while they are forbidden: a role assignment made by the same `azd up` can take a
    few minutes to reach the vault's data plane.
    """

    dry_run = False

    def __init__(self, log: TextIO, rbac_attempts: int = 8, rbac_wait_s: float = 20.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.log = log
        self.rbac_attempts = rbac_attempts
        self.rbac_wait_s = rbac_wait_s
        self.sleep = sleep

    def run(self, command: az.AzCommand) -> str:
        print(f"- {command.purpose}", file=self.log)
        for attempt in range(1, self.rbac_attempts + 1):
            try:
                done = subprocess.run(command.argv, capture_output=True, text=True, check=False)
            except FileNotFoundError as exc:
                raise RegistrationError(
                    f"{command.argv[0]} is not installed or not on PATH (needed to {command.purpose})"
                ) from exc
            forbidden = done.returncode != 0 and "forbidden" in done.stderr.lower()
            if not (forbidden and command.argv[:2] == ("az", "keyvault") and attempt < self.rbac_attempts):
                break
            print(f"  vault access not effective yet (role assignments propagate); retry {attempt} in "
                  f"{self.rbac_wait_s:.0f} s", file=self.log)
            self.sleep(self.rbac_wait_s)
        if done.returncode != 0:
            raise RegistrationError(
                f"failed to {command.purpose} (exit {done.returncode}): {done.stderr.strip()}\n"
                f"  command: {command.shell()}"
            )
        return done.stdout.strip()


class DryRunRunner:
    """Prints each command instead of running it and answers with placeholders, so the whole plan is shown."""

    dry_run = True

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def run(self, command: az.AzCommand) -> str:
        print(f"# {command.purpose}\n{command.shell()}", file=self.out)
        argv = command.argv
        if argv[:4] == ("az", "ad", "app", "create"):
            return "<appId>"
        if argv[:4] == ("az", "ad", "sp", "create"):
            return "<servicePrincipalObjectId>"
        if argv[:4] == ("az", "ad", "sp", "show"):
            return json.dumps({"id": "<graphServicePrincipalObjectId>", "appRoles": []})
        return ""


@dataclass(frozen=True)
class Options:
    streams: str = "all"
    display_name: str = DEFAULT_DISPLAY_NAME
    app_id: str | None = None
    credential: str = "secret"  # secret | certificate | none
    vault_name: str | None = None
    secret_name: str = DEFAULT_SECRET_NAME
    certificate_name: str = DEFAULT_CERTIFICATE_NAME
    certificate_pem: Path | None = None
    years: int = 1
    rotate: bool = False
    admin_consent: bool = False
    tenant_id: str | None = None
    cloud: str = "global"
    verify_role_ids: bool = False
    managed_identity_principal_id: str | None = None


def print_grants(grants: Sequence[Grant], out: TextIO) -> None:
    width = max(len(g.permission) for g in grants)
    print("Graph application permissions (least privilege for the enabled streams):", file=out)
    for grant in grants:
        print(f"  {grant.permission:<{width}}  {grant.app_role_id}  <- {', '.join(grant.streams)}", file=out)


def check_role_ids(runner: Runner, grants: Sequence[Grant]) -> str:
    """Compare the built-in app-role table with Graph's service principal in this tenant; returns its object id."""
    raw = runner.run(az.graph_app_roles())
    graph_sp = json.loads(raw)
    live = {role["value"]: role["id"] for role in graph_sp.get("appRoles") or []}
    if not runner.dry_run:
        wrong = [f"{g.permission}: table {g.app_role_id}, tenant {live.get(g.permission, 'absent')}"
                 for g in grants if live.get(g.permission) != g.app_role_id]
        if wrong:
            raise RegistrationError("Graph app-role ids differ from scripts/graph_permissions.py: " + "; ".join(wrong))
    return str(graph_sp["id"])


def ensure_app(opts: Options, runner: Runner) -> str:
    """The app registration's client id: given, found by display name (so re-runs are idempotent), or created."""
    if opts.app_id:
        return opts.app_id
    found = [line for line in runner.run(az.find_app(opts.display_name)).splitlines() if line.strip()]
    if len(found) > 1:
        raise RegistrationError(
            f"{len(found)} app registrations are named {opts.display_name!r}; pass --app-id or another --display-name"
        )
    return found[0] if found else runner.run(az.create_app(opts.display_name))


def ensure_service_principal(app_id: str, runner: Runner) -> None:
    if not runner.run(az.show_service_principal(app_id)):
        runner.run(az.create_service_principal(app_id))


@contextmanager
def private_file(content: bytes, suffix: str, dry_run: bool) -> Iterator[str]:
    """A file only the current user can read, deleted afterwards: how secrets reach `az` without argv/history."""
    if dry_run:
        yield f"<temporary file{suffix}>"
        return
    fd, path = tempfile.mkstemp(suffix=suffix)  # mode 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        yield path
    finally:
        Path(path).unlink(missing_ok=True)


def self_signed_certificate(common_name: str, years: int) -> tuple[bytes, bytes]:
    """(private key + certificate PEM for the vault, certificate-only PEM for the app registration)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365 * years))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem + cert_pem, cert_pem


def split_pem(pem: bytes) -> bytes:
    """The certificate blocks of a key+certificate PEM (what the app registration gets); refuses a PEM without one."""
    marker_begin, marker_end = b"-----BEGIN CERTIFICATE-----", b"-----END CERTIFICATE-----"
    start = pem.find(marker_begin)
    if start < 0 or b"PRIVATE KEY-----" not in pem:
        raise RegistrationError("--certificate-pem must hold both the private key and the certificate (PEM)")
    end = pem.rfind(marker_end) + len(marker_end)
    return pem[start:end] + b"\n"


def store_credential(opts: Options, app_id: str, runner: Runner, out: TextIO) -> str | None:
    """Add a secret or certificate to the app and put it in the vault; returns the vault secret name used."""
    if opts.credential == "none":
        return None
    if not opts.vault_name:
        raise RegistrationError("--vault-name is required to store the credential (azd output KEY_VAULT_NAME)")
    secret_name = opts.secret_name if opts.credential == "secret" else opts.certificate_name
    if runner.run(az.secret_exists(opts.vault_name, secret_name)) and not opts.rotate:
        print(f"{secret_name!r} is already in {opts.vault_name}; keeping it (pass --rotate to add a new one)", file=out)
        return secret_name
    if opts.credential == "secret":
        password = runner.run(az.reset_secret(app_id, opts.display_name, opts.years))
        if not runner.dry_run and not password:
            raise RegistrationError("az ad app credential reset returned no password")
        with private_file(password.encode(), ".txt", runner.dry_run) as path:
            runner.run(az.set_secret_from_file(opts.vault_name, secret_name, path, "text/plain"))
        return secret_name
    if opts.certificate_pem is not None:
        bundle = opts.certificate_pem.read_bytes()
        public = split_pem(bundle)
    elif runner.dry_run:
        bundle, public = b"", b""
    else:
        bundle, public = self_signed_certificate(opts.display_name, opts.years)
    with private_file(public, ".crt.pem", runner.dry_run) as cert_path:
        runner.run(az.upload_certificate(app_id, cert_path))
    with private_file(bundle, ".pem", runner.dry_run) as bundle_path:
        runner.run(az.set_secret_from_file(opts.vault_name, secret_name, bundle_path, "application/x-pem-file"))
    return secret_name


def tenant_of_cli(runner: Runner) -> str:
    if runner.dry_run:
        return "<tenantId>"
    return runner.run(az.AzCommand(("az", "account", "show", "--query", "tenantId", "--output", "tsv"),
                                   "read the signed-in tenant"))


def run(opts: Options, runner: Runner, out: TextIO) -> str | None:
    """The whole registration; returns the app's client id (None for the managed-identity route)."""
    grants = required_grants(parse_stream_selection(opts.streams))
    print_grants(grants, out)

    if opts.managed_identity_principal_id:
        principal = opts.managed_identity_principal_id
        graph_sp_id = check_role_ids(runner, grants)
        held = set(runner.run(az.list_app_role_assignments(principal, opts.cloud)).split())
        for grant in grants:
            if grant.app_role_id not in held:
                runner.run(az.grant_app_role(principal, graph_sp_id, grant, opts.cloud))
        return None

    if opts.verify_role_ids:
        check_role_ids(runner, grants)
    app_id = ensure_app(opts, runner)
    ensure_service_principal(app_id, runner)
    runner.run(az.add_permissions(app_id, grants))
    tenant = opts.tenant_id or tenant_of_cli(runner)
    if opts.admin_consent:
        runner.run(az.admin_consent(app_id))
    else:
        print(f"Admin consent is still needed. A Global or Privileged Role Administrator opens:\n"
              f"  {az.admin_consent_url(tenant, app_id, opts.cloud)}\n"
              f"or runs: {az.admin_consent(app_id).shell()}", file=out)
    store_credential(opts, app_id, runner, out)
    print(f"GRAPH_CLIENT_ID={app_id}", file=out)
    return app_id


def parse_args(argv: Sequence[str] | None) -> tuple[Options, bool, bool]:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.register_graph_app",
        description="Create the Graph app registration for m365-lake with least-privilege application permissions.",
    )
    parser.add_argument("--streams", default=os.environ.get("SYNC_STREAMS") or "all",
                        help="enabled streams, comma separated, or all (default: $SYNC_STREAMS or all)")
    parser.add_argument("--display-name", default=DEFAULT_DISPLAY_NAME, help="app registration name")
    parser.add_argument("--app-id", help="use this existing app registration instead of finding/creating one")
    parser.add_argument("--credential", choices=["secret", "certificate", "none"], default="secret",
                        help="credential to create and store in Key Vault (default: secret)")
    parser.add_argument("--vault-name", default=os.environ.get("KEY_VAULT_NAME"),
                        help="Key Vault receiving the credential (default: $KEY_VAULT_NAME, an azd output)")
    parser.add_argument("--secret-name", default=DEFAULT_SECRET_NAME)
    parser.add_argument("--certificate-name", default=DEFAULT_CERTIFICATE_NAME)
    parser.add_argument("--certificate-pem", type=Path,
                        help="your own PEM with private key + certificate; default: a new self-signed certificate")
    parser.add_argument("--years", type=int, default=1, help="validity of a new secret or certificate")
    parser.add_argument("--rotate", action="store_true", help="add a new credential even if the vault has one")
    parser.add_argument("--admin-consent", action="store_true", help="grant admin consent with the CLI user")
    parser.add_argument("--tenant-id", help="tenant for the consent URL (default: the az login tenant)")
    parser.add_argument("--cloud", choices=sorted(az.LOGIN_HOSTS), default=os.environ.get("GRAPH_CLOUD") or "global")
    parser.add_argument("--verify-role-ids", action="store_true",
                        help="check the built-in app-role ids against Graph's service principal first")
    parser.add_argument("--managed-identity-principal-id",
                        help="grant the app roles to this managed identity (object id) instead of an app")
    parser.add_argument("--list-permissions", action="store_true", help="only print the permissions and exit")
    parser.add_argument("--dry-run", action="store_true", help="print the az commands instead of running them")
    ns = parser.parse_args(argv)
    if ns.years < 1 or ns.years > 2:
        parser.error("--years must be 1 or 2 (Entra caps new client secrets at 24 months by default)")
    opts = Options(
        streams=ns.streams, display_name=ns.display_name, app_id=ns.app_id, credential=ns.credential,
        vault_name=ns.vault_name, secret_name=ns.secret_name, certificate_name=ns.certificate_name,
        certificate_pem=ns.certificate_pem, years=ns.years, rotate=ns.rotate, admin_consent=ns.admin_consent,
        tenant_id=ns.tenant_id, cloud=ns.cloud, verify_role_ids=ns.verify_role_ids,
        managed_identity_principal_id=ns.managed_identity_principal_id,
    )
    return opts, ns.list_permissions, ns.dry_run


def main(argv: Sequence[str] | None = None, out: TextIO | None = None,
         runner_factory: Callable[[bool, TextIO], Runner] | None = None) -> int:
    out = out or sys.stdout
    opts, list_only, dry_run = parse_args(argv)
    try:
        if list_only:
            print_grants(required_grants(parse_stream_selection(opts.streams)), out)
            return 0
        runner = (runner_factory or default_runner)(dry_run, out)
        run(opts, runner, out)
    except (SelectionError, RegistrationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def default_runner(dry_run: bool, out: TextIO) -> Runner:
    return DryRunRunner(out) if dry_run else CliRunner(sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())

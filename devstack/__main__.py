"""`python -m devstack up`: run the local stack until Ctrl-C / SIGTERM, announcing readiness via the env file."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import signal
import sys
from pathlib import Path

from devstack.env import DEFAULT_ENV_FILE, StackEnv
from devstack.stack import Stack, StackOptions, Throttle
from devstack.tenant import TenantSizes


def _throttle(value: str) -> Throttle:
    if value in ("on", "off"):
        return "on" if value == "on" else "off"
    try:
        scale = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--throttle: {value!r}; use on, off or a window scale such as 0.1") from None
    if scale <= 0:
        raise argparse.ArgumentTypeError("--throttle: the scale must be positive (0.1 = windows 10x shorter)")
    return scale


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start Azurite and the Entra, Key Vault and Graph emulators")
    up.add_argument("--state-dir", type=Path, help="persist CA, keys, registrations, secrets, blobs and delta state")
    up.add_argument("--env-file", type=Path, default=DEFAULT_ENV_FILE, help=f"default {DEFAULT_ENV_FILE}")
    up.add_argument("--seed", type=int, default=1, help="demo tenant seed (same seed + sizes = same tenant)")
    up.add_argument("--throttle", type=_throttle, default="on", help="on (default), off, or a window scale")
    up.add_argument("--token-lifetime", type=int, help="access-token lifetime in seconds (Entra default 3599)")
    up.add_argument("--no-graph", action="store_true", help="skip the demo tenant and the Graph emulator")
    up.add_argument("--no-azurite", action="store_true", help="skip Azurite")
    up.add_argument("--size", default="demo", help="tenant size preset: demo (default), small, medium, large")
    for f in dataclasses.fields(TenantSizes):
        kind = float if f.type in (float, "float") else int
        up.add_argument(f"--{f.name.replace('_', '-')}", type=kind, dest=f"size_{f.name}", metavar="N",
                        help=f"override the preset's {f.name}")
    return parser


def _options(args: argparse.Namespace) -> StackOptions:
    try:
        base = TenantSizes.preset(args.size)
        overrides = {f.name: getattr(args, f"size_{f.name}") for f in dataclasses.fields(TenantSizes)
                     if getattr(args, f"size_{f.name}") is not None}
        sizes = dataclasses.replace(base, **overrides)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    return StackOptions(
        state_dir=args.state_dir,
        seed=args.seed,
        sizes=sizes,
        throttle=args.throttle,
        token_lifetime_seconds=args.token_lifetime,
        graph=not args.no_graph,
        azurite=not args.no_azurite,
    )


def _summary(env: StackEnv, env_file: Path) -> str:
    lines = [
        "devstack is up",
        f"  tenant        {env.tenant_id}",
        f"  entra         {env.authority_host}   (admin {env.entra_admin_url})",
        f"  key vault     {env.key_vault_url}",
        f"  graph         {env.graph_url or '(disabled)'}",
        f"  blob          {env.blob_account_url}",
        f"  graph app     {env.graph_app.client_id}  (secret and certificate in the vault)",
        f"  CA bundle     {env.ca_bundle}",
        f"  env file      {env_file}",
        "Ctrl-C to stop.",
    ]
    return "\n".join(lines)


async def serve(options: StackOptions, env_file: Path) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    env_path = env_file
    with contextlib.suppress(FileNotFoundError):
        env_path.unlink()  # a stale file from a crashed run must not look like "ready"
    stack = Stack(options)
    try:
        env = await stack.start()
        env.write(env_path)  # last: its appearance is the readiness signal
        print(_summary(env, env_path), flush=True)
        await stop.wait()
    finally:
        with contextlib.suppress(FileNotFoundError):
            env_path.unlink()
        await stack.stop()
        print("devstack stopped", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "up":
        options = _options(args)
        try:
            asyncio.run(serve(options, args.env_file.resolve()))
        except KeyboardInterrupt:  # a second Ctrl-C during shutdown
            return 130
        return 0
    return 2


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())

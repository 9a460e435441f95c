"""The ``zeronode`` command.

    zeronode up     [--config F] [--data-dir D] [--host H] [--port P] [--region R] [--domain D]
                    [--log-level L] [--shutdown-grace S]
    zeronode env    [--config F] [--data-dir D] [--host H] [--port P] [--region R]
    zeronode --version

``up`` runs the node agent in the foreground (logs on stderr, the endpoint summary on stdout)
until SIGINT or SIGTERM. ``env`` prints ``export`` lines that point the AWS CLI and SDKs at the
node: ``eval "$(zeronode env)"``. It resolves the settings exactly as ``up`` does (flags,
``ZERONODE_*``, config file, defaults), so give it the same ``--data-dir``/``--port``/``--config``
as ``up`` if those were not defaults. If the node has never run, ``env`` creates the data
directory and the credentials file itself (the agent will then use the same keys), so scripts
may run ``env`` before ``up``.

Exit status: 0 success (and a graceful stop on a signal), 1 the agent could not run (data
directory in use, port taken), 2 bad configuration or usage, 130 interrupted during start-up.
Each sub-command is a ``_cmd_*`` function registered in :func:`build_parser`.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from functools import partial

import trio

from zeronode import __version__, logs
from zeronode.agent import AgentError, Wiring, run_agent
from zeronode.config import (
    OPTIONS,
    ConfigError,
    Settings,
    ensure_data_dir,
    resolve_settings,
)
from zeronode.credentials import (
    ACCESS_KEY_ENV,
    SECRET_KEY_ENV,
    CredentialsError,
    load_or_create,
)
from zeronode.node import NodeServices

# The settings that decide what `zeronode env` prints; `up` takes every setting.
ENV_SETTINGS = ("data_dir", "host", "port", "region")

_log = logs.get_logger("zeronode.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zeronode",
        description="A private cloud for the edge: the core AWS APIs served from this machine.",
    )
    parser.add_argument("--version", action="version", version=f"zeronode {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    up = commands.add_parser(
        "up",
        help="run the node agent in the foreground",
        description="Run the node agent until SIGINT/SIGTERM. Each flag also has a ZERONODE_* "
        "environment variable and a config-file key; a flag wins over the variable, the variable "
        "over the file, the file over the default.",
    )
    _add_settings_flags(up, [option.name for option in OPTIONS])
    up.set_defaults(run=_cmd_up)

    env = commands.add_parser(
        "env",
        help="print shell exports that point the AWS CLI and SDKs at this node",
        description="Print export lines for AWS_ENDPOINT_URL, the keys and the region; use as "
        'eval "$(zeronode env)". Creates the credentials if the node has never run.',
    )
    _add_settings_flags(env, list(ENV_SETTINGS))
    env.set_defaults(run=_cmd_env)
    return parser


def _add_settings_flags(parser: argparse.ArgumentParser, names: list[str]) -> None:
    parser.add_argument("--config", metavar="FILE", help="TOML config file [$ZERONODE_CONFIG]")
    for option in OPTIONS:
        if option.name in names:
            parser.add_argument(
                option.flag,
                dest=option.name,
                metavar=option.metavar,
                action="append" if option.repeatable else "store",
                help=f"{option.help} [${option.env_var}, config key {option.name}]",
            )


def main(argv: Sequence[str] | None = None, *, wiring: Wiring | None = None) -> int:
    """Run the command line; returns the exit status. ``wiring`` is for tests (see agent)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.run(args, os.environ, wiring))
    except (ConfigError, CredentialsError) as error:
        print(f"zeronode: error: {error}", file=sys.stderr)
        return 2


def _cmd_up(args: argparse.Namespace, env: Mapping[str, str], wiring: Wiring | None) -> int:
    settings = resolve_settings(vars(args), env)
    banner = partial(print_banner, env_command=_env_command(args, settings))
    failure: AgentError | None = None
    with logs.logging_to(sys.stderr, settings.log_level):
        try:
            trio.run(partial(run_agent, settings, ready=banner, env=env, wiring=wiring))
        except AgentError as error:
            _log.error("agent.failed", reason=str(error))
            failure = error
        except KeyboardInterrupt:  # Ctrl-C before the signal handlers were installed
            return 130
    if failure is not None:
        print(f"zeronode: {failure}", file=sys.stderr)
        return 1
    return 0


def _cmd_env(args: argparse.Namespace, env: Mapping[str, str], wiring: Wiring | None) -> int:
    settings = resolve_settings(vars(args), env)
    if not env.get(ACCESS_KEY_ENV) and not env.get(SECRET_KEY_ENV):
        ensure_data_dir(settings.data_dir)  # keys from the environment need no directory
    credentials = load_or_create(settings.data_dir, env)
    sys.stdout.write(
        env_exports(settings, credentials.access_key_id, credentials.secret_access_key)
    )
    return 0


def env_exports(settings: Settings, access_key_id: str, secret_access_key: str) -> str:
    """The shell lines ``zeronode env`` prints (POSIX sh, values quoted with ``shlex``).

    A session token left in the environment from real AWS would be sent along with these keys
    and rejected, so it is unset.
    """
    exports = {
        "AWS_ENDPOINT_URL": settings.endpoint_url,
        "AWS_ACCESS_KEY_ID": access_key_id,
        "AWS_SECRET_ACCESS_KEY": secret_access_key,
        "AWS_REGION": settings.region,
        "AWS_DEFAULT_REGION": settings.region,
    }
    lines = [f"export {name}={shlex.quote(value)}" for name, value in exports.items()]
    lines.append("unset AWS_SESSION_TOKEN AWS_SECURITY_TOKEN")
    return "\n".join(lines) + "\n"


def print_banner(node: NodeServices, *, env_command: str = "zeronode env") -> None:
    """What ``zeronode up`` prints on stdout once the node is ready."""
    settings, credentials = node.settings, node.credentials
    where = credentials.path or f"${ACCESS_KEY_ENV} / ${SECRET_KEY_ENV}"
    print(
        f"zeronode {__version__} is up: node {node.node_id}\n"
        f"  endpoint     {settings.endpoint_url}  (S3, DynamoDB, SQS, Lambda, ELBv2, EC2)\n"
        f"  region       {settings.region}\n"
        f"  credentials  {where}\n"
        f"  data         {settings.data_dir}\n"
        f"Point the AWS CLI and SDKs at it, in another shell:\n"
        f'  eval "$({env_command})"',
        flush=True,
    )


def _env_command(args: argparse.Namespace, settings: Settings) -> str:
    """``zeronode env`` with those flags given to ``up`` that change what ``env`` prints.

    Values are the resolved ones (absolute paths), so the hint works from any directory.
    """
    words = ["zeronode", "env"]
    if args.config:
        words += ["--config", str(settings.config_file)]
    for name in ENV_SETTINGS:
        if getattr(args, name, None) is not None:
            words += ["--" + name.replace("_", "-"), str(getattr(settings, name))]
    return shlex.join(words)


if __name__ == "__main__":
    sys.exit(main())

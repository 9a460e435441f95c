"""The ``zeronode`` command.

    zeronode up     [--config F] [--data-dir D] [--host H] [--port P] [--region R] [--domain D]
                    [--log-level L] [--shutdown-grace S]
    zeronode env    [--config F] [--data-dir D] [--host H] [--port P] [--region R]
    zeronode token  [--config F] [--data-dir D]
    zeronode status [--json] [--watch] [--config F] [--data-dir D] [--host H] [--port P]
    zeronode remove NODE [--config F] [--data-dir D] [--host H] [--port P] [--region R]
    zeronode --version

``up`` runs the node agent in the foreground (logs on stderr, the endpoint summary on stdout)
until SIGINT or SIGTERM. ``env`` prints ``export`` lines that point the AWS CLI and SDKs at the
node: ``eval "$(zeronode env)"``. It resolves the settings exactly as ``up`` does (flags,
``ZERONODE_*``, config file, defaults), so give it the same ``--data-dir``/``--port``/``--config``
as ``up`` if those were not defaults. If the node has never run, ``env`` creates the data
directory and the credentials file itself (the agent will then use the same keys), so scripts
may run ``env`` before ``up``.

``token`` prints the join token of the node's cluster, read from the data directory (it works
whether or not the agent runs; the node must have run once). ``status`` asks the local agent
(``GET /_zeronode/status``) and prints every member and a verdict; ``remove`` asks it to evict a
node cluster-wide (``POST /_zeronode/cluster/remove``, SigV4-signed with the root key from the
data directory or ``AWS_*`` keys, as ``env`` finds them).

``status`` exits 0 when the cluster is healthy, 1 when degraded, 2 when the agent cannot be
reached. Other commands: exit status 0 success (and a graceful stop on a signal), 1 the agent could not run (data
directory in use, port taken), 2 bad configuration or usage, 130 interrupted during start-up.
Each sub-command is a ``_cmd_*`` function registered in :func:`build_parser`.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

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
from zeronode.memory import limit_malloc_arenas
from zeronode.node import NodeServices
from zeronode.status import render_table

# The settings that decide what `zeronode env` prints; `up` takes every setting.
ENV_SETTINGS = ("data_dir", "host", "port", "region")
# What the commands that talk to the local agent need to find it (and sign, for remove).
AGENT_SETTINGS = ("data_dir", "host", "port", "region")
STATUS_HEALTHY, STATUS_DEGRADED, STATUS_UNREACHABLE = 0, 1, 2
WATCH_INTERVAL = 2.0

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

    token = commands.add_parser(
        "token",
        help="print the join token of this node's cluster",
        description="Print the token other nodes join this node's cluster with "
        "(zeronode up --join TOKEN). Read from the data directory; the agent need not run.",
    )
    _add_settings_flags(token, ["data_dir"])
    token.set_defaults(run=_cmd_token)

    status = commands.add_parser(
        "status",
        help="show every member of the cluster and whether it is healthy",
        description="Ask the local agent for the cluster's members. Exit status: 0 healthy, "
        "1 degraded, 2 the agent cannot be reached.",
    )
    status.add_argument("--json", action="store_true", help="print the status document")
    status.add_argument(
        "--watch", action="store_true", help=f"refresh every {WATCH_INTERVAL:g} s until Ctrl-C"
    )
    _add_settings_flags(status, list(AGENT_SETTINGS))
    status.set_defaults(run=_cmd_status)

    remove = commands.add_parser(
        "remove",
        help="evict a node from the cluster for good",
        description="Ask the local agent to evict NODE (a node id, or a unique prefix as "
        "status shows): every member refuses it from then on. A removed node can come back "
        "only as a new node (wipe its data directory and join again).",
    )
    remove.add_argument("node", metavar="NODE", help="node id or unique prefix")
    _add_settings_flags(remove, list(AGENT_SETTINGS))
    remove.set_defaults(run=_cmd_remove)
    return parser


def _add_settings_flags(parser: argparse.ArgumentParser, names: list[str]) -> None:
    parser.add_argument("--config", metavar="FILE", help="TOML config file [$ZERONODE_CONFIG]")
    for option in OPTIONS:
        if option.name not in names:
            continue
        help_text = f"{option.help} [${option.env_var}, config key {option.name}]"
        if option.boolean:
            parser.add_argument(
                option.flag, dest=option.name, action=argparse.BooleanOptionalAction,
                default=None, help=help_text,
            )  # fmt: skip
        else:
            parser.add_argument(
                option.flag,
                dest=option.name,
                metavar=option.metavar,
                action="append" if option.repeatable else "store",
                help=help_text,
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
    limit_malloc_arenas()  # before the log writer and the worker threads exist
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


def _cmd_token(args: argparse.Namespace, env: Mapping[str, str], wiring: Wiring | None) -> int:
    from cluster.join import JoinError, token_for
    from cluster.pki import NODE_ID_FILE, IdentityError, NodeIdentity
    from zeronode.agent import CLUSTER_DIR

    settings = resolve_settings(vars(args), env)
    directory = settings.data_dir / CLUSTER_DIR
    if not (directory / NODE_ID_FILE).exists():
        print(f"zeronode: no cluster identity in {directory}: start the node once "
              "(zeronode up) so it founds or joins a cluster", file=sys.stderr)
        return 1
    try:
        identity = NodeIdentity.load_or_create(directory)
        print(token_for(identity))
    except (IdentityError, JoinError) as error:
        print(f"zeronode: {error} (a node that is still joining has no token yet)",
              file=sys.stderr)
        return 1
    return 0


def _agent_call(settings: Settings, request: urllib.request.Request) -> tuple[int, Any]:
    """Send ``request`` to the local agent; (HTTP status, decoded JSON body)."""
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        try:
            return error.code, json.load(error)
        except ValueError:
            return error.code, {"message": error.reason}


def _cmd_status(args: argparse.Namespace, env: Mapping[str, str], wiring: Wiring | None) -> int:
    settings = resolve_settings(vars(args), env)
    url = settings.endpoint_url + "/_zeronode/status"
    while True:
        try:
            _, document = _agent_call(settings, urllib.request.Request(url))
            code = STATUS_HEALTHY if document["verdict"]["healthy"] else STATUS_DEGRADED
            text = json.dumps(document, indent=2) + "\n" if args.json else render_table(document)
        except (OSError, ValueError, KeyError, TypeError) as error:
            code = STATUS_UNREACHABLE
            text = f"zeronode: cannot reach the agent at {settings.endpoint_url}: {error}\n"
        if not args.watch:
            (sys.stdout if code != STATUS_UNREACHABLE else sys.stderr).write(text)
            return code
        sys.stdout.write("\x1b[H\x1b[2J" + time.strftime("%H:%M:%S  ") + text)
        sys.stdout.flush()
        try:
            time.sleep(WATCH_INTERVAL)
        except KeyboardInterrupt:
            return code


def _cmd_remove(args: argparse.Namespace, env: Mapping[str, str], wiring: Wiring | None) -> int:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as SigningKeys

    settings = resolve_settings(vars(args), env)
    credentials = load_or_create(settings.data_dir, env)
    url = settings.endpoint_url + "/_zeronode/cluster/remove"
    body = json.dumps({"node": args.node}).encode()
    signed = AWSRequest(
        method="POST", url=url, data=body, headers={"Content-Type": "application/json"}
    )
    keys = SigningKeys(credentials.access_key_id, credentials.secret_access_key)
    SigV4Auth(keys, "zeronode", settings.region).add_auth(signed)
    request = urllib.request.Request(
        url, data=body, headers=dict(signed.headers.items()), method="POST"
    )
    try:
        status, answer = _agent_call(settings, request)
    except (OSError, ValueError) as error:
        print(f"zeronode: cannot reach the agent at {settings.endpoint_url}: {error}",
              file=sys.stderr)
        return 2
    if status != 200:
        print(f"zeronode: remove refused: {answer.get('message', answer)}", file=sys.stderr)
        return 1
    print(f"removed {answer['removed']}: every member refuses it from now on")
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
        f"{_cluster_line(node)}"
        f"Point the AWS CLI and SDKs at it, in another shell:\n"
        f'  eval "$({env_command})"',
        flush=True,
    )


def _cluster_line(node: NodeServices) -> str:
    cluster = node.cluster
    if cluster is None:
        return ""
    if not cluster.joined.is_set():
        return f"  cluster      joining through {', '.join(node.settings.peers) or 'mDNS'}\n"
    return f"  cluster      {cluster.address}  (cluster {cluster.cluster_id}, zeronode token)\n"


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

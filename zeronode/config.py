"""The node's settings: one frozen :class:`Settings`, resolved from four sources.

Precedence, highest first (the same for every setting, with no exceptions):

1. a command-line flag (``zeronode up --port 9800``);
2. a ``ZERONODE_*`` environment variable (``ZERONODE_PORT=9800``); an empty value counts as unset;
3. a key in the TOML config file named by ``--config FILE`` or ``ZERONODE_CONFIG``
   (``port = 9800``); no file is read unless one is named;
4. the default.

=================  =====================  ==================  ============================
flag               environment variable   config file key     default
=================  =====================  ==================  ============================
``--data-dir``     ``ZERONODE_DATA_DIR``  ``data_dir``        ``$XDG_DATA_HOME/zeronode``,
                                                              else
                                                              ``~/.local/share/zeronode``
``--host``         ``ZERONODE_HOST``      ``host``            ``127.0.0.1``
``--port``         ``ZERONODE_PORT``      ``port``            ``9700`` (every service)
``--region``       ``ZERONODE_REGION``    ``region``          ``us-east-1``
``--domain``       ``ZERONODE_DOMAIN``    ``domain``          none (S3 virtual hosts off)
``--log-level``    ``ZERONODE_LOG_LEVEL`` ``log_level``       ``info``
``--shutdown-``    ``ZERONODE_SHUTDOWN_`` ``shutdown_grace``  ``30`` seconds
``grace``          ``GRACE``
``--disk`` (re-    ``ZERONODE_DISKS``     ``disks`` (a list)  ``<data_dir>/objects``
peatable)          (``:``-separated)
``--cluster-port`` ``ZERONODE_CLUSTER_`` ``cluster_port``    ``9701`` (node-to-node, mTLS)
                   ``PORT``
``--peer`` (re-    ``ZERONODE_PEERS``     ``peers`` (a list)  none (``HOST:CLUSTER_PORT``
peatable)          (``,``-separated)                          seeds)
``--join``         ``ZERONODE_JOIN``      ``join_token``      none (found a new cluster)
``--mdns`` /       ``ZERONODE_MDNS``      ``mdns``            on unless ``host`` is loopback
``--no-mdns``
``--cluster-``     ``ZERONODE_CLUSTER_``  ``cluster_``        ``1`` second (advanced: SWIM's
``protocol-``      ``PROTOCOL_PERIOD``    ``protocol_``       protocol period; tests use
``period``                                ``period``          shorter ones)
``--ack``          ``ZERONODE_ACK``       ``ack``             ``majority`` (or ``local``:
                                                              writes never wait for peers)
``--replicas``     ``ZERONODE_REPLICAS``  ``replicas``        ``2`` copies of object bytes
                                                              (capped by the cluster's size)
``--config``       ``ZERONODE_CONFIG``    (the file itself)   none
=================  =====================  ==================  ============================

The config file is flat TOML (``port = 9700``, ``data_dir = "/var/lib/zeronode"``,
``disks = ["/mnt/a", "/mnt/b"]``). A relative ``data_dir`` or disk in the file is relative to the
file's own directory; from a flag or the
environment, relative to the working directory; ``~`` is expanded everywhere. An unknown key,
a value of the wrong type or out of range, or an unreadable file raises :class:`ConfigError`,
whose message names the setting and where the bad value came from; the CLI exits with status 2.

Resolution is pure apart from reading the config file: the caller passes the flags and the
environment, so tests need neither ``argv`` nor ``os.environ``.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cluster.replication import ACK_MODES

DEFAULT_PORT = 9700
DEFAULT_CLUSTER_PORT = 9701
LOG_LEVELS = ("debug", "info", "warning", "error")

# A DNS label; botocore checks region names with the same rule, so "factory-1" is fine.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_REGION = re.compile(_LABEL)
_HOSTNAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*")


class ConfigError(Exception):
    """A setting is unknown, unreadable or invalid. The message is meant for the operator."""


@dataclass(frozen=True)
class Settings:
    """Everything a node is configured with. Frozen: read it anywhere, change it nowhere."""

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    region: str = "us-east-1"
    log_level: str = "info"
    domain: str | None = None
    shutdown_grace: float = 30.0
    disks: tuple[Path, ...] = ()
    cluster_port: int = DEFAULT_CLUSTER_PORT
    peers: tuple[str, ...] = ()
    join_token: str | None = None
    mdns: bool | None = None
    cluster_protocol_period: float = 1.0
    ack: str = "majority"
    replicas: int = 2
    config_file: Path | None = None

    @property
    def mdns_enabled(self) -> bool:
        """mDNS as configured, else on unless the node listens on loopback only (announcing
        127.0.0.1 to the LAN would help nobody)."""
        if self.mdns is not None:
            return self.mdns
        try:
            return not ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host != "localhost"

    @property
    def disk_paths(self) -> tuple[Path, ...]:
        """Where object bytes go: the configured disks, else one folder in the data dir."""
        return self.disks or (self.data_dir / "objects",)

    @property
    def endpoint_url(self) -> str:
        """The URL a client on this machine uses: a wildcard bind is reached over loopback."""
        host = self.host
        if host in ("0.0.0.0", ""):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"


@dataclass(frozen=True)
class Option:
    """One setting: its ``Settings`` field (also the config key) and how to check a value."""

    name: str
    parse: Callable[[Any], Any]
    help: str
    metavar: str
    #: A list setting: the flag is singular and repeatable (``--disk A --disk B``), the
    #: environment variable ``:``-separated, the config key a TOML array.
    repeatable: bool = False
    #: An on/off setting: ``--name`` / ``--no-name``.
    boolean: bool = False
    #: The flag and environment variable when they are not derived from ``name``.
    flag_name: str | None = None
    env_name: str | None = None

    @property
    def flag(self) -> str:
        if self.flag_name is not None:
            return self.flag_name
        name = self.name.removesuffix("s") if self.repeatable else self.name
        return "--" + name.replace("_", "-")

    @property
    def env_var(self) -> str:
        return self.env_name or "ZERONODE_" + self.name.upper()


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _path(value: Any) -> Path:
    return Path(_text(value)).expanduser()


def _paths(value: Any) -> tuple[Path, ...]:
    if isinstance(value, str):
        value = [part for part in value.split(os.pathsep) if part]
    if not isinstance(value, (list, tuple)):
        raise TypeError("expected a list of paths")
    paths = tuple(_path(item) for item in value)
    if len(set(paths)) != len(paths):
        raise ValueError("the same path is listed twice")
    return paths


def _host(value: Any) -> str:
    host = _text(value).strip()
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        pass
    if _HOSTNAME.fullmatch(host.lower()):
        return host.lower()
    raise ValueError("expected an IP address or a host name")


def _port(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError("expected an integer")
    if isinstance(value, str):
        if not value.strip().isdigit():
            raise ValueError("expected an integer from 1 to 65535")
        value = int(value)
    if not isinstance(value, int) or not 1 <= value <= 65535:
        raise ValueError("expected an integer from 1 to 65535")
    return value


def _region(value: Any) -> str:
    region = _text(value).strip()
    if not _REGION.fullmatch(region):
        raise ValueError(
            "expected a region name such as us-east-1 (lower-case letters, digits, '-')"
        )
    return region


def _domain(value: Any) -> str:
    domain = _text(value).strip().lower().rstrip(".")
    if not _HOSTNAME.fullmatch(domain):
        raise ValueError("expected a DNS name such as s3.example.internal")
    return domain


def _one_of(choices: tuple[str, ...]) -> Callable[[Any], str]:
    """A parser of a word from ``choices``, in any case."""

    def parse(value: Any) -> str:
        word = _text(value).strip().lower()
        if word not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return word

    return parse


def _seconds(value: Any) -> float:
    if isinstance(value, bool):
        raise TypeError("expected a number of seconds")
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ValueError("expected a number of seconds") from None
    if not isinstance(value, (int, float)) or not 0 <= value <= 3600:
        raise ValueError("expected a number of seconds from 0 to 3600")
    return float(value)


def _peers(value: Any) -> tuple[str, ...]:
    from cluster.discovery import parse_seed  # the one parser of HOST:PORT seeds

    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    if not isinstance(value, (list, tuple)):
        raise TypeError("expected a list of HOST:CLUSTER_PORT")
    return tuple(dict.fromkeys(str(parse_seed(_text(item))) for item in value))


def _join_token(value: Any) -> str:
    from cluster.join import TokenError, parse_token

    token = "".join(_text(value).split())
    try:
        parse_token(token)
    except TokenError as error:
        raise ValueError(str(error)) from None
    return token


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")



def _replicas(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError("expected an integer")
    if isinstance(value, str):
        if not value.strip().isdigit():
            raise ValueError("expected an integer from 1 to 16")
        value = int(value)
    if not isinstance(value, int) or not 1 <= value <= 16:
        raise ValueError("expected an integer from 1 to 16")
    return value


def _protocol_period(value: Any) -> float:
    seconds = _seconds(value)
    if not 0.05 <= seconds <= 60:
        raise ValueError("expected a number of seconds from 0.05 to 60")
    return seconds


OPTIONS: tuple[Option, ...] = (
    Option("data_dir", _path, "where the node keeps its journal, objects and keys", "DIR"),
    Option("host", _host, "address to listen on (default 127.0.0.1)", "HOST"),
    Option("port", _port, f"port serving every AWS API (default {DEFAULT_PORT})", "PORT"),
    Option("region", _region, "the region name clients sign with (default us-east-1)", "REGION"),
    Option("domain", _domain, "DNS name for S3 virtual-host addressing (BUCKET.DOMAIN)", "DOMAIN"),
    Option("log_level", _one_of(LOG_LEVELS), f"one of {', '.join(LOG_LEVELS)} (default info)", "LEVEL"),
    Option(
        "shutdown_grace",
        _seconds,
        "seconds in-flight requests get to finish on shutdown (default 30)",
        "SECONDS",
    ),
    Option("disks", _paths, "a disk (directory) for object bytes; repeat for more", "PATH", True),
    Option(
        "cluster_port",
        _port,
        f"port for node-to-node traffic, on the same host (default {DEFAULT_CLUSTER_PORT})",
        "PORT",
    ),
    Option("peers", _peers, "a cluster member to contact; repeat for more", "HOST:PORT", True),
    Option(
        "join_token",
        _join_token,
        "join the cluster this token names (from `zeronode token` on a member)",
        "TOKEN",
        flag_name="--join",
        env_name="ZERONODE_JOIN",
    ),
    Option(
        "mdns",
        _boolean,
        "find members on the LAN with mDNS (default: on unless host is loopback)",
        "",
        boolean=True,
    ),
    Option(
        "cluster_protocol_period",
        _protocol_period,
        "advanced: SWIM protocol period in seconds (default 1)",
        "SECONDS",
    ),
    Option(
        "ack",
        _one_of(ACK_MODES),
        "when a write is answered: once a majority of members stored it (majority, the "
        "default: read-after-write on every node, writes refused in a minority) or at once "
        "(local: always writable, converges by last-writer-wins)",
        "MODE",
    ),
    Option(
        "replicas",
        _replicas,
        "copies of each object's bytes kept on different nodes (default 2)",
        "N",
    ),
)
_BY_NAME = {option.name: option for option in OPTIONS}
CONFIG_ENV_VAR = "ZERONODE_CONFIG"


def default_data_dir(env: Mapping[str, str]) -> Path:
    """``$XDG_DATA_HOME/zeronode``, else ``~/.local/share/zeronode`` (XDG base directories)."""
    xdg = env.get("XDG_DATA_HOME", "")
    if xdg and Path(xdg).is_absolute():  # the XDG spec says to ignore a relative value
        return Path(xdg) / "zeronode"
    home = env.get("HOME") or str(Path.home())
    return Path(home) / ".local" / "share" / "zeronode"


def resolve_settings(flags: Mapping[str, Any], env: Mapping[str, str]) -> Settings:
    """Build the settings from command-line ``flags`` (None = not given) and ``env``.

    ``flags`` holds option names (``port``, ``data_dir``...) and ``config`` for the file. Every
    value given in any source is checked, even one a higher source overrides, so a mistake
    does not lie in wait until the override is removed.
    """
    config_file = _config_path(flags, env)
    from_file: dict[str, Any] = {}
    if config_file is not None:
        for name, raw in _read_config_file(config_file).items():
            from_file[name] = _check(_BY_NAME[name], raw, str(config_file))
        if "data_dir" in from_file:
            from_file["data_dir"] = config_file.parent / from_file["data_dir"]
        if "disks" in from_file:
            from_file["disks"] = tuple(config_file.parent / disk for disk in from_file["disks"])
    from_env = {
        option.name: _check(option, env[option.env_var], f"${option.env_var}")
        for option in OPTIONS
        if env.get(option.env_var, "") != ""
    }
    from_flags = {
        option.name: _check(option, flags[option.name], option.flag)
        for option in OPTIONS
        if flags.get(option.name) is not None
    }
    values = {**from_file, **from_env, **from_flags}
    data_dir = values.pop("data_dir", None) or default_data_dir(env)
    if "disks" in values:
        values["disks"] = tuple(Path(os.path.abspath(disk)) for disk in values["disks"])
    return Settings(data_dir=Path(os.path.abspath(data_dir)), config_file=config_file, **values)


def _check(option: Option, value: Any, source: str) -> Any:
    try:
        return option.parse(value)
    except (TypeError, ValueError) as error:
        raise ConfigError(
            f"{option.name}: invalid value {value!r} from {source}: {error}"
        ) from None


def _config_path(flags: Mapping[str, Any], env: Mapping[str, str]) -> Path | None:
    given = flags.get("config") or env.get(CONFIG_ENV_VAR, "")
    if not given:
        return None
    return Path(os.path.abspath(Path(str(given)).expanduser()))


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            document = tomllib.load(file)
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path} is not valid TOML: {error}") from None
    unknown = sorted(set(document) - set(_BY_NAME))
    if unknown:
        known = ", ".join(_BY_NAME)
        raise ConfigError(
            f"config file {path}: unknown key(s) {', '.join(unknown)} (known: {known})"
        )
    return document


def ensure_data_dir(data_dir: Path) -> None:
    """Create the data directory (owner-only, 0700) if missing; fail clearly if unusable.

    Blocking: call it from a worker thread inside trio.
    """
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"cannot create data directory {data_dir}: {error.strerror}") from None
    if not data_dir.is_dir():
        raise ConfigError(f"data directory {data_dir} is not a directory")

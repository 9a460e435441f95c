"""Settings resolution: flag > ZERONODE_* env var > TOML config file > default, and bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cluster.join import make_token
from zeronode.config import OPTIONS, ConfigError, Settings, resolve_settings

HOME = {"HOME": "/home/op"}


def write_config(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_defaults_without_any_source() -> None:
    settings = resolve_settings({}, HOME)
    assert settings == Settings(data_dir=Path("/home/op/.local/share/zeronode"))
    assert (settings.host, settings.port, settings.region) == ("127.0.0.1", 9700, "us-east-1")
    assert settings.log_level == "info" and settings.domain is None
    assert settings.endpoint_url == "http://127.0.0.1:9700"


def test_data_dir_default_follows_xdg_data_home() -> None:
    settings = resolve_settings({}, {**HOME, "XDG_DATA_HOME": "/data/xdg"})
    assert settings.data_dir == Path("/data/xdg/zeronode")


def test_relative_xdg_data_home_is_ignored_as_the_spec_says() -> None:
    settings = resolve_settings({}, {**HOME, "XDG_DATA_HOME": "rel/dir"})
    assert settings.data_dir == Path("/home/op/.local/share/zeronode")


def test_zeronode_data_dir_beats_xdg() -> None:
    settings = resolve_settings({}, {**HOME, "XDG_DATA_HOME": "/x", "ZERONODE_DATA_DIR": "/srv/zn"})
    assert settings.data_dir == Path("/srv/zn")


TOKENS = [make_token(bytes([n]) * 32, bytes([n + 1]) * 32) for n in (1, 2, 3)]

# (setting, value in the file, env value, flag value, parsed file/env/flag values, default)
PRECEDENCE_CASES: list[tuple[str, str, str, str, tuple[Any, Any, Any], Any]] = [
    ("port", "9001", "9002", "9003", (9001, 9002, 9003), 9700),
    (
        "host",
        '"10.0.0.1"',
        "10.0.0.2",
        "10.0.0.3",
        ("10.0.0.1", "10.0.0.2", "10.0.0.3"),
        "127.0.0.1",
    ),
    (
        "region",
        '"eu-west-1"',
        "eu-west-2",
        "eu-west-3",
        ("eu-west-1", "eu-west-2", "eu-west-3"),
        "us-east-1",
    ),
    ("log_level", '"debug"', "WARNING", "error", ("debug", "warning", "error"), "info"),
    (
        "domain",
        '"a.example"',
        "b.example",
        "c.example",
        ("a.example", "b.example", "c.example"),
        None,
    ),
    ("shutdown_grace", "1.5", "2", "3", (1.5, 2.0, 3.0), 30.0),
    (
        "disks",
        '["/file/a", "/file/b"]',
        "/env/a:/env/b",
        "/flag/a",
        ((Path("/file/a"), Path("/file/b")), (Path("/env/a"), Path("/env/b")), (Path("/flag/a"),)),
        (),
    ),
    ("cluster_port", "9101", "9102", "9103", (9101, 9102, 9103), 9701),
    (
        "peers",
        '["10.0.0.1:9701", "node2.lan:9701"]',
        "10.0.0.3:1,[fd00::5]:2",
        ["10.0.0.4:9"],
        (("10.0.0.1:9701", "node2.lan:9701"), ("10.0.0.3:1", "[fd00::5]:2"), ("10.0.0.4:9",)),
        (),
    ),
    ("join_token", f'"{TOKENS[0]}"', TOKENS[1], TOKENS[2], tuple(TOKENS), None),
    ("mdns", "false", "true", False, (False, True, False), None),
    ("cluster_protocol_period", "0.5", "0.25", "2", (0.5, 0.25, 2.0), 1.0),
    ("ack", '"local"', "majority", "LOCAL", ("local", "majority", "local"), "majority"),
    ("replicas", "3", "1", "5", (3, 1, 5), 2),
    (
        "data_dir",
        '"/from/file"',
        "/from/env",
        "/from/flag",
        (Path("/from/file"), Path("/from/env"), Path("/from/flag")),
        Path("/home/op/.local/share/zeronode"),
    ),
]


@pytest.mark.parametrize("name,file_value,env_value,flag_value,parsed,default", PRECEDENCE_CASES)
def test_flag_beats_env_beats_file_beats_default(
    tmp_path: Path,
    name: str,
    file_value: str,
    env_value: str,
    flag_value: str,
    parsed: tuple[Any, Any, Any],
    default: Any,
) -> None:
    config = write_config(tmp_path / "zeronode.toml", f"{name} = {file_value}\n")
    env_var = next(option.env_var for option in OPTIONS if option.name == name)
    env = {**HOME, env_var: env_value}
    flags = {"config": str(config), name: flag_value}
    from_file, from_env, from_flag = parsed
    assert getattr(resolve_settings(flags, env), name) == from_flag
    assert getattr(resolve_settings({"config": str(config)}, env), name) == from_env
    assert getattr(resolve_settings({"config": str(config)}, HOME), name) == from_file
    assert getattr(resolve_settings({}, HOME), name) == default


def test_every_option_is_covered_by_the_precedence_test() -> None:
    assert {option.name for option in OPTIONS} == {case[0] for case in PRECEDENCE_CASES}


def test_config_file_named_by_environment(tmp_path: Path) -> None:
    config = write_config(tmp_path / "zn.toml", "port = 9100\n")
    assert resolve_settings({}, {**HOME, "ZERONODE_CONFIG": str(config)}).port == 9100


def test_config_flag_beats_config_environment_variable(tmp_path: Path) -> None:
    from_env = write_config(tmp_path / "env.toml", "port = 9100\n")
    from_flag = write_config(tmp_path / "flag.toml", "port = 9200\n")
    env = {**HOME, "ZERONODE_CONFIG": str(from_env)}
    settings = resolve_settings({"config": str(from_flag)}, env)
    assert settings.port == 9200 and settings.config_file == from_flag


def test_empty_environment_variable_counts_as_unset(tmp_path: Path) -> None:
    config = write_config(tmp_path / "zn.toml", "port = 9100\n")
    assert resolve_settings({"config": str(config)}, {**HOME, "ZERONODE_PORT": ""}).port == 9100


def test_relative_data_dir_in_file_is_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    config = write_config(tmp_path / "etc" / "zn.toml", 'data_dir = "../var/zn"\n')
    settings = resolve_settings({"config": str(config)}, HOME)
    assert settings.data_dir == tmp_path / "var" / "zn"


def test_relative_data_dir_flag_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_settings({"data_dir": "zn"}, HOME).data_dir == tmp_path / "zn"


def test_tilde_is_expanded() -> None:
    settings = resolve_settings({"data_dir": "~/zn"}, HOME)
    assert settings.data_dir.is_absolute() and "~" not in str(settings.data_dir)


@pytest.mark.parametrize(
    "host,endpoint",
    [
        ("0.0.0.0", "http://127.0.0.1:9700"),
        ("::", "http://[::1]:9700"),
        ("::1", "http://[::1]:9700"),
        ("node1.lan", "http://node1.lan:9700"),
    ],
)
def test_endpoint_url_is_what_a_local_client_dials(host: str, endpoint: str) -> None:
    assert resolve_settings({"host": host}, HOME).endpoint_url == endpoint


def test_settings_are_frozen() -> None:
    settings = resolve_settings({}, HOME)
    with pytest.raises(AttributeError):
        settings.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    "name,value",
    [
        ("port", "abc"),
        ("port", "0"),
        ("port", "70000"),
        ("port", "-1"),
        ("region", "US East"),
        ("log_level", "chatty"),
        ("host", "not a host"),
        ("domain", "-bad-.example"),
        ("shutdown_grace", "soon"),
        ("shutdown_grace", "-1"),
        ("ack", "quorum"),
        ("replicas", "0"),
        ("replicas", "two"),
    ],
)
def test_bad_flag_and_env_values_are_rejected_naming_the_source(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"{name}: invalid value .* from --"):
        resolve_settings({name: value}, HOME)
    env_var = "ZERONODE_" + name.upper()
    with pytest.raises(ConfigError, match=rf"{name}: invalid value .* from \${env_var}"):
        resolve_settings({}, {**HOME, env_var: value})


def test_an_empty_flag_value_is_rejected() -> None:
    with pytest.raises(
        ConfigError, match="region: invalid value '' from --region: must not be empty"
    ):
        resolve_settings({"region": ""}, HOME)


@pytest.mark.parametrize(
    "text,message",
    [
        ("colour = 'blue'\n", "unknown key.*colour"),
        ("port = 'abc'\n", "port: invalid value 'abc'"),
        ("port = true\n", "port: invalid value True"),
        ("port = 70000\n", "port: invalid value 70000"),
        ("region = 7\n", "region: invalid value 7.*expected a string"),
        ("[cluster]\ntoken = 'x'\n", "unknown key.*cluster"),
        ("port = \n", "not valid TOML"),
    ],
)
def test_bad_config_files_are_rejected_clearly(tmp_path: Path, text: str, message: str) -> None:
    config = write_config(tmp_path / "zn.toml", text)
    with pytest.raises(ConfigError, match=message):
        resolve_settings({"config": str(config)}, HOME)


def test_bad_value_in_file_names_the_file(tmp_path: Path) -> None:
    config = write_config(tmp_path / "zn.toml", "port = 'abc'\n")
    with pytest.raises(ConfigError, match=f"from {config}"):
        resolve_settings({"config": str(config)}, HOME)


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file .*missing.toml"):
        resolve_settings({"config": str(tmp_path / "missing.toml")}, HOME)


@pytest.mark.parametrize("source", ["file", "env"])
def test_a_bad_value_is_an_error_even_when_a_higher_source_overrides_it(
    tmp_path: Path, source: str
) -> None:
    # Every source is checked whole: a typo must not lie in wait until the override is dropped.
    config = write_config(tmp_path / "zn.toml", "port = 'abc'\n" if source == "file" else "")
    env = {**HOME, "ZERONODE_PORT": "abc" if source == "env" else ""}
    with pytest.raises(ConfigError, match="port: invalid value 'abc'"):
        resolve_settings({"config": str(config), "port": "9000"}, env)


def test_disks_default_to_a_folder_in_the_data_dir(tmp_path: Path) -> None:
    settings = resolve_settings({"data_dir": str(tmp_path)}, HOME)
    assert settings.disk_paths == (tmp_path / "objects",)


def test_disk_flag_repeats_and_relative_file_disks_follow_the_file(tmp_path: Path) -> None:
    from zeronode.cli import build_parser

    args = build_parser().parse_args(["up", "--disk", "/mnt/a", "--disk", "/mnt/b"])
    assert resolve_settings({"disks": args.disks}, HOME).disks == (Path("/mnt/a"), Path("/mnt/b"))
    config = write_config(tmp_path / "zn.toml", 'disks = ["d1"]\n')
    assert resolve_settings({"config": str(config)}, HOME).disks == (tmp_path / "d1",)


@pytest.mark.parametrize("bad", ['disks = 5', 'disks = ["/a", "/a"]', "disks = [1]"])
def test_bad_disks_are_refused(tmp_path: Path, bad: str) -> None:
    config = write_config(tmp_path / "zn.toml", bad + "\n")
    with pytest.raises(ConfigError, match="disks"):
        resolve_settings({"config": str(config)}, HOME)

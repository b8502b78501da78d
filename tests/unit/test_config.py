"""The config loader: every error kind names file, line and key; the embedded default and its
examples parse; lookup order; durations; `hlcon config` end to end (a real subprocess)."""

from __future__ import annotations

import dataclasses
import math
import os
import re
import subprocess
import sys
import typing
import zipfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lab.config import (
    EMBEDDED,
    ActionsConfig,
    BackupConfig,
    CertConfig,
    Config,
    ConfigError,
    ConsoleConfig,
    ContainerEndpointConfig,
    HealthConfig,
    HostConfig,
    LocalConfig,
    NotifyConfig,
    Problem,
    VpnConfig,
    WatchConfig,
    audit_log_path,
    default_config_text,
    format_duration,
    load_config,
    locate_config,
    parse_config,
    parse_duration,
    render_config,
    state_dir,
    xdg_config_path,
)
from lab.secrets import SecretRef

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "config"
SECTIONS: dict[str, type] = {
    "console": ConsoleConfig,
    "local": LocalConfig,
    "health": HealthConfig,
    "actions": ActionsConfig,
    "watch": WatchConfig,
}
ARRAYS: dict[str, type] = {
    "hosts": HostConfig,
    "containers": ContainerEndpointConfig,
    "vpn": VpnConfig,
    "backups": BackupConfig,
    "certs": CertConfig,
    "notify": NotifyConfig,
}


def problems_of(name: str) -> list[Problem]:
    path = DATA / name
    with pytest.raises(ConfigError) as info:
        parse_config(path.read_text(), str(path))
    return info.value.problems


def only(problems: list[Problem], key: str) -> Problem:
    found = [p for p in problems if p.key == key]
    assert len(found) == 1, f"expected one problem for {key}, got {problems}"
    return found[0]


def uncommented_examples(text: str) -> str:
    """config.toml with every commented-out TOML line (headers and `key = value`) uncommented."""
    pattern = re.compile(r"^# (\[\[?[a-z_.]+\]\]?\s*$|[a-z_]+ = .*$)")
    return "\n".join(pattern.sub(r"\1", line) for line in text.split("\n"))


# ── the embedded default


def test_embedded_default_parses_to_the_schema_defaults() -> None:
    config = parse_config(default_config_text(), EMBEDDED)
    # The file and the dataclasses agree on every default.
    assert config == Config(source=EMBEDDED)


def test_embedded_default_is_what_load_config_returns_without_any_file(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "nothing-here")}
    assert load_config(None, env) == Config(source=EMBEDDED)


def test_uncommented_examples_are_a_valid_config() -> None:
    text = uncommented_examples((REPO / "config.toml").read_text())
    config = parse_config(text, "config.toml (examples uncommented)")
    assert [h.name for h in config.hosts] == ["fufuwuqi", "skylab"]
    assert [b.name for b in config.backups] == ["offsite", "b2"]
    assert [c.name for c in config.certs] == ["fufu.land", "mail", "internal-ca"]
    assert config.vpn[0].subnet == "10.100.0.0/24" and config.vpn[0].stale_after == 180.0
    assert config.containers[0].url.startswith("tcp://")
    assert config.backups[0].password == SecretRef("keyring", "hlcon/offsite")
    assert config.backups[1].password.scheme == "command"
    assert config.backups[1].env["AWS_SECRET_ACCESS_KEY"] == SecretRef("file", "/run/secrets/b2")
    assert config.hosts[0].identity == Path("~/.ssh/id_ed25519").expanduser()
    assert config.console.state_dir == Path("~/.local/state/hlcon").expanduser()


def test_every_key_of_the_schema_is_documented_in_config_toml() -> None:
    text = (REPO / "config.toml").read_text()
    missing = [
        f"{section}.{f.name}"
        for section, cls in (SECTIONS | ARRAYS).items()
        for f in dataclasses.fields(cls)
        if not re.search(rf"\b{f.name}\b", text)
    ]
    assert missing == []
    for section in SECTIONS:
        assert f"\n[{section}]\n" in text
    for section in ARRAYS:
        assert f"# [[{section}]]" in text


# ── a good file


def test_good_file_parses_with_types_and_defaults() -> None:
    config = parse_config((DATA / "good.toml").read_text(), "good.toml")
    assert config.source == "good.toml"
    assert config.console.refresh == 3.0 and config.console.timeout == 10.0
    host = config.hosts[0]
    assert (host.name, host.port, host.user, host.services) == (
        "fufuwuqi",
        2222,
        "root",
        ("nginx", "demo"),
    )
    assert config.backups[0].max_age == 5400.0
    assert config.backups[0].password == SecretRef("env", "HLCON_TEST_RESTIC_PASSWORD")
    assert state_dir(config) == Path("/var/tmp/hlcon-test-state")
    assert audit_log_path(config) == Path("/var/tmp/hlcon-test-state/audit.jsonl")


def test_render_config_reads_back_to_the_same_config() -> None:
    text = uncommented_examples((REPO / "config.toml").read_text())
    config = parse_config(text, "examples")
    rendered = render_config(config, explain=True)
    assert parse_config(rendered, "examples") == config


def test_state_dir_and_audit_log_defaults_are_xdg() -> None:
    config = Config()
    assert state_dir(config).name == "hlcon"
    assert audit_log_path(config) == state_dir(config) / "audit.jsonl"
    explicit = parse_config('[console]\naudit_log = "/srv/audit.jsonl"\n', "x")
    assert audit_log_path(explicit) == Path("/srv/audit.jsonl")


# ── every error kind: file, line, key


def test_broken_toml_names_line_and_key() -> None:
    (problem,) = problems_of("broken-toml.toml")
    assert problem.file.endswith("broken-toml.toml")
    assert (problem.line, problem.key) == (7, "hosts[0].port")
    assert "invalid TOML" in problem.message
    assert str(problem).startswith(f"{DATA / 'broken-toml.toml'}:7: hosts[0].port: invalid TOML")


def test_unknown_key_suggests_the_near_one() -> None:
    (problem,) = problems_of("unknown-key.toml")
    assert (problem.line, problem.key) == (11, "hosts[1].prot")
    assert 'did you mean "port"?' in problem.message


def test_unknown_section_suggests_the_near_one() -> None:
    problem = only(problems_of("many-problems.toml"), "helth")
    assert problem.line == 5 and 'did you mean "health"?' in problem.message


def test_wrong_type_says_expected_and_found() -> None:
    (problem,) = problems_of("wrong-type.toml")
    assert (problem.line, problem.key) == (4, "hosts[0].port")
    assert problem.message == 'expected an integer, got "22a" (a string)'


def test_bad_durations_are_refused_bare_numbers_included() -> None:
    problems = problems_of("bad-duration.toml")
    refresh = only(problems, "console.refresh")
    timeout = only(problems, "console.timeout")
    assert refresh.line == 2 and '"5 minutes"' in refresh.message
    assert timeout.line == 3 and 'expected a duration like "30s"' in timeout.message
    assert "30 (an integer)" in timeout.message


def test_missing_required_key_is_named_at_its_entry() -> None:
    (problem,) = problems_of("missing-required.toml")
    assert (problem.line, problem.key) == (1, "backups[0].repository")
    assert problem.message == 'missing required key "repository"'


def test_a_bool_is_not_an_integer_nor_a_number() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("[health]\nrestart_loop = true\ndisk_warn = false\n", "b.toml")
    assert [(p.line, p.key) for p in info.value.problems] == [
        (2, "health.restart_loop"),
        (3, "health.disk_warn"),
    ]
    assert "true (a boolean)" in info.value.problems[0].message


def test_all_problems_of_a_file_are_collected() -> None:
    problems = problems_of("many-problems.toml")
    assert {(p.line, p.key) for p in problems} == {
        (2, "console.refresh"),
        (3, "console.read_only"),
        (5, "helth"),
        (11, "hosts[0].port"),
        (12, "hosts[0].services"),
    }
    text = str(ConfigError(problems))
    assert len(text.splitlines()) == len(problems)


def test_cross_checks() -> None:
    problems = problems_of("cross-checks.toml")
    by_key = {p.key: p for p in problems}
    assert by_key["hosts[1].name"].line == 7
    assert 'duplicate name "fufuwuqi"' in by_key["hosts[1].name"].message
    assert "line 3" in by_key["hosts[1].name"].message
    assert by_key["vpn[0].subnet"].line == 13
    assert by_key["vpn[0].endpoint"].line == 14
    assert "host:port" in by_key["vpn[0].endpoint"].message
    assert by_key["backups[0].host"].line == 20
    assert 'did you mean "fufuwuqi"?' in by_key["backups[0].host"].message
    assert by_key["certs[0]"].line == 22 and "exactly one of endpoint or file, got both" in (
        by_key["certs[0]"].message
    )
    assert by_key["certs[1].starttls"].line == 30
    assert by_key["certs[2].warn_days"].line == 35
    assert "must be more than critical_days" in by_key["certs[2].warn_days"].message
    assert "got neither" in by_key["certs[3]"].message and by_key["certs[3]"].line == 38
    assert len(problems) == 8


def test_a_plain_secret_is_refused_and_never_repeated() -> None:
    problems = problems_of("plain-secret.toml")
    text = str(ConfigError(problems))
    assert "correct-horse" not in text and "wJalrXUtnFEMI" not in text
    password = only(problems, "backups[0].password")
    assert password.line == 4
    assert password.message == (
        "must be a secret reference (keyring:, env:, file:, command:), not the secret"
    )
    assert only(problems, "backups[0].env.AWS_SECRET_ACCESS_KEY").line == 5


def test_array_of_tables_written_as_a_table_gets_a_hint() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config('[hosts]\nname = "a"\n', "h.toml")
    (problem,) = info.value.problems
    assert (problem.line, problem.key) == (1, "hosts")
    assert "write [[hosts]], not [hosts]" in problem.message


def test_duplicate_key_names_both_lines() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config('[console]\nrefresh = "5s"\n\nrefresh = "6s"\n', "d.toml")
    (problem,) = info.value.problems
    assert (problem.line, problem.key) == (4, "console.refresh")
    assert "first on line 2" in problem.message


def test_line_of_a_key_inside_a_multiline_array_and_dotted_keys() -> None:
    text = (
        "[local]\n"
        "services = [\n"
        '  "a",\n'
        "  3,\n"
        "]\n"
        "console.theme = 4\n"  # dotted key inside [local] → local.console: unknown
        "[console]\n"
        '"refresh" = "x"\n'
    )
    with pytest.raises(ConfigError) as info:
        parse_config(text, "m.toml")
    assert {(p.line, p.key) for p in info.value.problems} == {
        (2, "local.services[1]"),
        (6, "local.console"),
        (8, "console.refresh"),
    }


def test_paths_expand_the_home_directory() -> None:
    config = parse_config('[[hosts]]\nname = "a"\naddress = "a"\nidentity = "~/.ssh/k"\n', "p")
    assert config.hosts[0].identity == Path.home() / ".ssh" / "k"


# ── where the config comes from


def test_lookup_order_and_reasons(tmp_path: Path) -> None:
    given_file = tmp_path / "given.toml"
    env_file = tmp_path / "env.toml"
    xdg_home = tmp_path / "xdg"
    xdg_file = xdg_home / "hlcon" / "config.toml"
    for path, refresh in ((given_file, "1s"), (env_file, "2s"), (xdg_file, "3s")):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f'[console]\nrefresh = "{refresh}"\n')
    env = {"HLCON_CONFIG": str(env_file), "XDG_CONFIG_HOME": str(xdg_home)}
    assert xdg_config_path(env) == xdg_file
    assert load_config(given_file, env).console.refresh == 1.0
    assert load_config(None, env).console.refresh == 2.0
    assert load_config(None, {"XDG_CONFIG_HOME": str(xdg_home)}).source == str(xdg_file)
    assert "--config" in locate_config(given_file, env).reason
    assert "$HLCON_CONFIG" in locate_config(None, env).reason
    assert "XDG" in locate_config(None, {"XDG_CONFIG_HOME": str(xdg_home)}).reason
    nothing = locate_config(None, {"XDG_CONFIG_HOME": str(tmp_path / "none")})
    assert nothing.path is None and "hlcon config init" in nothing.reason


def test_a_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_config(missing, {})
    assert str(info.value) == f"{missing}: no such file (given with --config)"
    with pytest.raises(ConfigError) as info:
        load_config(None, {"HLCON_CONFIG": str(missing)})
    assert "from $HLCON_CONFIG" in str(info.value)


def test_unreadable_inputs_are_problems_not_tracebacks(tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes(b'[console]\ntheme = "caf\xe9"\n')
    with pytest.raises(ConfigError) as info:
        load_config(latin1, {})
    assert str(info.value) == f"{latin1}:2: not UTF-8 text (TOML files are UTF-8)"
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, {})
    assert "is a directory" in str(info.value)


# ── durations


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("5s", 5.0),
        ("3m", 180.0),
        ("26h", 93600.0),
        ("1h30m", 5400.0),
        ("2d", 172800.0),
        ("500ms", 0.5),
        ("1w", 604800.0),
        ("1.5h", 5400.0),
        (" 1h 30m ", 5400.0),
        ("1m30s250ms", 90.25),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["30", "", "5 minutes", "-5s", "1h-30m", "5S", "s", "1e3s", "٣s"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="expected a duration like"):
        parse_duration(text)


def test_format_duration() -> None:
    assert [format_duration(s) for s in (0, 0.5, 5, 180, 5400, 93600, 90.25)] == [
        "0s",
        "500ms",
        "5s",
        "3m",
        "1h30m",
        "1d2h",
        "1m30s250ms",
    ]
    with pytest.raises(ValueError):
        format_duration(math.nan)


@given(st.integers(min_value=0, max_value=100 * 365 * 86_400_000))
def test_duration_round_trip(milliseconds: int) -> None:
    seconds = milliseconds / 1000
    assert parse_duration(format_duration(seconds)) == seconds


@given(st.text(max_size=30))
def test_parse_duration_only_returns_or_raises_value_error(text: str) -> None:
    try:
        seconds = parse_duration(text)
    except ValueError:
        return
    assert seconds >= 0 and parse_duration(format_duration(seconds)) == seconds


# ── hypothesis: parse_config only ever returns a Config or raises ConfigError


def check_outcome(text: str) -> None:
    lines = text.count("\n") + 1
    try:
        config = parse_config(text, "fuzz.toml")
    except ConfigError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert problem.file == "fuzz.toml"
            assert problem.line is None or 1 <= problem.line <= lines
            assert str(problem).startswith("fuzz.toml")
        return
    assert isinstance(config, Config)
    # Whatever parses renders to TOML that reads back to the same config.
    assert parse_config(render_config(config), "fuzz.toml") == config


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.text())
def test_arbitrary_text(text: str) -> None:
    check_outcome(text)


@settings(max_examples=200)
@given(st.text(alphabet="[]{}=\"'#.,=\n abc0123456789hostsnamerefresh:s", max_size=80))
def test_toml_ish_text(text: str) -> None:
    check_outcome(text)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(repr(value), repr(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        escaped = "".join(f"\\u{ord(c):04x}" if c < " " or c in '"\\\x7f' else c for c in value)
        return f'"{escaped}"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{toml_value(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


SAMPLES = [
    "5s", "1h30m", "0s", "-1s", "500ms", "local", "fufuwuqi", "none", "auto", "ssh",
    "unix:///run/podman/podman.sock", "env:RESTIC_PASSWORD", "keyring:hlcon/offsite",
    "file:/run/secrets/x", "command:pass show x", "command:'", "hunter2", "~/x", "",
    "10.100.0.0/24", "10.100.0.1/24", "vpn.example.org:51820", "[::1]:443", "x:0", "smtp", "imap",
]  # fmt: skip
scalars = st.one_of(
    st.sampled_from(SAMPLES),
    st.text(max_size=12),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.booleans(),
)
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=3),
    st.dictionaries(st.sampled_from(["AWS_KEY", "a b", "x"]), scalars, max_size=2),
)


def schema_keys(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)] + ["bogus", "nmae"]


@st.composite
def table_body(draw: st.DrawFn, cls: type) -> str:
    hints = typing.get_type_hints(cls, vars(sys.modules["lab.config"]))
    keys = draw(st.lists(st.sampled_from(schema_keys(cls)), unique=True, max_size=6))
    # Required keys usually present, so some documents get past "missing required".
    required = [
        f.name
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if draw(st.booleans()):
        keys = list(dict.fromkeys(required + keys))
    lines = []
    for key in keys:
        value = draw(values)
        if key in hints and hints[key] is str and draw(st.booleans()):
            value = draw(st.sampled_from(SAMPLES))
        lines.append(f"{key} = {toml_value(value)}")
    return "\n".join(lines)


@st.composite
def documents(draw: st.DrawFn) -> str:
    parts = []
    if draw(st.booleans()):
        parts.append(
            f"{draw(st.sampled_from(['hosts', 'vpn', 'zzz']))} = {toml_value(draw(values))}"
        )
    for name in draw(st.lists(st.sampled_from([*SECTIONS, "helth"]), unique=True, max_size=4)):
        parts.append(f"[{name}]\n" + draw(table_body(SECTIONS.get(name, ConsoleConfig))))
    for name in draw(st.lists(st.sampled_from(list(ARRAYS)), max_size=5)):
        parts.append(f"[[{name}]]\n" + draw(table_body(ARRAYS[name])))
    return "\n\n".join(parts) + "\n"


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_structured_random_documents(text: str) -> None:
    check_outcome(text)


# ── the CLI, as a real process


def hlcon(
    *args: str, env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("HLCON_")}
    full_env["PYTHONPATH"] = str(REPO)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *args],
        cwd=REPO,
        env=full_env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("name", "where"),
    [
        ("broken-toml.toml", ":7: hosts[0].port: invalid TOML"),
        ("unknown-key.toml", ':11: hosts[1].prot: unknown key "prot"; did you mean "port"?'),
        ("wrong-type.toml", ':4: hosts[0].port: expected an integer, got "22a" (a string)'),
        ("bad-duration.toml", ":2: console.refresh: expected a duration like"),
    ],
)
def test_cli_config_check_names_line_and_key(name: str, where: str) -> None:
    result = hlcon("config", "check", "--config", str(DATA / name))
    assert result.returncode == 2
    assert f"{DATA / name}{where}" in result.stderr
    assert result.stdout == ""


def test_cli_config_check_reports_every_problem() -> None:
    result = hlcon("config", "check", "--config", str(DATA / "many-problems.toml"))
    assert result.returncode == 2
    assert "5 problems" in result.stderr
    assert len([line for line in result.stderr.splitlines() if "many-problems.toml:" in line]) == 5


def test_cli_config_check_masks_secrets(tmp_path: Path) -> None:
    secret = "pw-s3cr3t-4c7f"
    result = hlcon(
        "config",
        "check",
        "--config",
        str(DATA / "good.toml"),
        env={"HLCON_TEST_RESTIC_PASSWORD": secret},
    )
    assert result.returncode == 0, result.stderr
    assert secret not in result.stdout + result.stderr
    assert 'password = "env:HLCON_TEST_RESTIC_PASSWORD"  # resolves (value hidden)' in result.stdout
    assert 'max_age = "1h30m"' in result.stdout
    assert 'timeout = "10s"' in result.stdout  # defaults filled in
    assert "[health]" in result.stdout and "[[vpn]]" in result.stdout
    unresolved = hlcon("config", "check", "--config", str(DATA / "good.toml"))
    assert unresolved.returncode == 0
    assert "does NOT resolve: environment variable HLCON_TEST_RESTIC_PASSWORD is not set" in (
        unresolved.stdout
    )
    assert "1 secret reference(s) do not resolve here: env:HLCON_TEST" in unresolved.stderr
    skipped = hlcon("config", "check", "--no-resolve", "--config", str(DATA / "good.toml"))
    assert skipped.returncode == 0 and "resolve" not in skipped.stdout + skipped.stderr


def test_cli_global_config_option_and_env_var() -> None:
    by_option = hlcon("--config", str(DATA / "wrong-type.toml"), "config", "check")
    by_env = hlcon("config", "check", env={"HLCON_CONFIG": str(DATA / "wrong-type.toml")})
    assert by_option.returncode == by_env.returncode == 2
    assert "wrong-type.toml:4: hosts[0].port" in by_env.stderr


def test_cli_config_init_writes_once_and_never_overwrites(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path)}
    target = tmp_path / "xdg" / "hlcon" / "config.toml"
    first = hlcon("config", "init", env=env)
    assert first.returncode == 0 and str(target) in first.stdout
    assert target.read_text() == (REPO / "config.toml").read_text()
    target.write_text("# mine\n")
    second = hlcon("config", "init", env=env)
    assert second.returncode == 1
    assert f"{target} already exists; not overwritten" in second.stderr
    assert target.read_text() == "# mine\n"
    # …and `hlcon config path` now points there, saying why.
    where = hlcon("config", "path", env=env)
    assert where.stdout.strip() == f"{target} (the XDG config file)"
    elsewhere = tmp_path / "a" / "b" / "c.toml"
    assert hlcon("config", "init", "--path", str(elsewhere), env=env).returncode == 0
    assert parse_config(elsewhere.read_text(), str(elsewhere)) == Config(source=str(elsewhere))


def test_cli_config_path_explains_each_source(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path)}
    default = hlcon("config", "path", env=env)
    assert default.stdout.startswith("<embedded default> (no --config, no $HLCON_CONFIG")
    from_env = hlcon("config", "path", env=env | {"HLCON_CONFIG": str(DATA / "good.toml")})
    assert from_env.stdout.strip() == f"{DATA / 'good.toml'} (from $HLCON_CONFIG)"
    missing = hlcon("--config", str(tmp_path / "nope.toml"), "config", "path", env=env)
    assert "does not exist" in missing.stderr


def test_installed_wheel_carries_the_embedded_default(tmp_path: Path) -> None:
    """Outside a checkout, the default comes from lab/default-config.toml inside the wheel."""
    built = subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path / "dist")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("hlcon-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    assert (site / "lab" / "default-config.toml").read_text() == (REPO / "config.toml").read_text()
    probe = (
        "from lab.config import load_config, default_config_text; import lab.config as m; "
        "c = load_config(); print(m.__file__); print(c.source, c.console.refresh)"
    )
    env = {"PYTHONPATH": str(site), "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "x")}
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [str(site / "lab" / "config.py"), "<embedded default> 5.0"]


# ── hostile input: a message with file and line, never a traceback or a hang (issue 11 §8)


def one_problem(text: str) -> Problem:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "lab.toml")
    assert len(info.value.problems) == 1, info.value.problems
    return info.value.problems[0]


def test_an_unknown_user_in_a_path_is_a_problem() -> None:
    problem = one_problem(
        '[[hosts]]\nname = "a"\naddress = "a"\nidentity = "~nosuchuser-4f1a/.ssh/k"\n'
    )
    assert (problem.line, problem.key) == (4, "hosts[0].identity")
    assert 'no user "nosuchuser-4f1a"' in problem.message


def test_an_unknown_user_in_a_file_secret_is_a_problem() -> None:
    problem = one_problem(
        '[[backups]]\nname = "r"\nrepository = "/srv/r"\npassword = "file:~nosuchuser-4f1a/pw"\n'
    )
    assert (problem.line, problem.key) == (4, "backups[0].password")
    assert 'no user "nosuchuser-4f1a"' in problem.message


def test_an_unknown_user_in_the_config_path_is_a_config_error() -> None:
    unknown = "~nosuchuser-4f1a/c.toml"
    for path, env in ((Path(unknown), {}), (None, {"HLCON_CONFIG": unknown})):
        with pytest.raises(ConfigError) as info:
            load_config(path, env)
        assert 'no user "nosuchuser-4f1a"' in str(info.value)


@pytest.mark.timeout(30)  # before the fix: blocked in open() for ever
def test_a_fifo_or_a_device_is_refused_without_reading_it(tmp_path: Path) -> None:
    fifo = tmp_path / "config.toml"
    os.mkfifo(fifo)
    # Opening a FIFO for reading blocks until a writer comes: the loader must not open it so.
    with pytest.raises(ConfigError) as info:
        load_config(fifo, {})
    assert str(info.value) == f"{fifo}: not a regular file (a FIFO); a config is a file"
    with pytest.raises(ConfigError) as info:
        load_config(Path("/dev/zero"), {})
    assert str(info.value) == (
        "/dev/zero: not a regular file (a character device); a config is a file"
    )


def test_a_huge_config_file_is_refused(tmp_path: Path) -> None:
    huge = tmp_path / "huge.toml"
    with huge.open("wb") as out:
        out.truncate(64 * 1024 * 1024)  # sparse: no disk used
    with pytest.raises(ConfigError) as info:
        load_config(huge, {})
    assert str(info.value) == f"{huge}: larger than 1 MiB; not a config file"


@pytest.mark.parametrize(
    ("section", "key", "value", "says"),
    [
        ("local", "services", '["nginx\\u0000x"]', "contains a NUL character"),
        ("local", "services", '["nginx\\nx"]', "a systemd unit name"),
        ("local", "services", '["--now"]', "a systemd unit name"),
        ("hosts", "services", '["a b"]', "a systemd unit name"),
        ("vpn", "interface", '"../../../tmp/x"', "an interface name"),
        ("vpn", "interface", '"wg0-this-is-much-too-long"', "an interface name"),
        ("vpn", "netns", '"../x"', "a network namespace name"),
        ("hosts", "address", '"[::1]"', 'without brackets: "::1"'),
        ("hosts", "address", '"-oProxyCommand=x"', "a DNS name or IP"),
        ("hosts", "address", '"a_b..c"', "a DNS name or IP"),
    ],
)
def test_names_and_addresses_are_checked_at_load(
    section: str, key: str, value: str, says: str
) -> None:
    head = {
        "local": "[local]\n",
        "hosts": '[[hosts]]\nname = "h"\n' + ("" if key == "address" else 'address = "h"\n'),
        "vpn": "[[vpn]]\n" + ("" if key == "interface" else 'interface = "wg0"\n'),
    }[section]
    text = head + f"{key} = {value}\n"
    problem = one_problem(text)
    prefix = section if section == "local" else f"{section}[0]"
    assert problem.key.startswith(f"{prefix}.{key}")
    assert problem.line == text.count("\n")
    assert says in problem.message
    assert "\x00" not in problem.message and "\n" not in problem.message


def test_good_names_and_addresses_still_load() -> None:
    config = parse_config(
        '[local]\nservices = ["nginx.service", "getty@tty1.service", "sshd"]\n'
        '[[hosts]]\nname = "h"\naddress = "::1"\n'
        '[[hosts]]\nname = "i"\naddress = "nas.lan"\n'
        '[[hosts]]\nname = "j"\naddress = "192.0.2.7"\n'
        '[[vpn]]\ninterface = "wg-home.0"\nnetns = "hlcon-lab"\n',
        "lab.toml",
    )
    assert [h.address for h in config.hosts] == ["::1", "nas.lan", "192.0.2.7"]
    assert config.vpn[0].interface == "wg-home.0"


@pytest.mark.parametrize(
    ("text", "key", "says"),
    [
        ('[[hosts]]\nname = "h"\naddress = "h"\nuser = "ro\\u0000ot"\n', "hosts[0].user", "NUL"),
        (
            '[[hosts]]\nname = "h"\naddress = "h"\ndocker_socket = "run/x.sock"\n',
            "hosts[0].docker_socket",
            "an absolute socket path",
        ),
        (
            '[[vpn]]\ninterface = "wg0"\npeer_names = { "k" = "phone\\n[Peer]" }\n',
            "vpn[0].peer_names",
            "a name on one line",
        ),
        ('[[vpn]]\ninterface = "wg0"\nalways_on = [""]\n', "vpn[0].always_on", "a name"),
        (
            '[[vpn]]\ninterface = "wg0"\nexpected_offline = ["ph\\tone"]\n',
            "vpn[0].expected_offline",
            "a name on one line",
        ),
        (
            '[[backups]]\nname = "r"\nrepository = "/r"\npassword = "env:P"\n'
            'env = { "AWS KEY" = "env:K" }\n',
            "backups[0].env",
            "environment variable names",
        ),
    ],
)
def test_strings_that_would_fail_later_are_refused_at_load(text: str, key: str, says: str) -> None:
    problem = one_problem(text)
    assert (problem.key, problem.line) == (key, text.count("\n"))
    assert says in problem.message


def test_a_fifo_at_the_xdg_path_is_reported_not_skipped(tmp_path: Path) -> None:
    (tmp_path / "hlcon").mkdir()
    os.mkfifo(tmp_path / "hlcon" / "config.toml")
    with pytest.raises(ConfigError, match="not a regular file"):
        load_config(None, {"XDG_CONFIG_HOME": str(tmp_path)})

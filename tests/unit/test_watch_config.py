"""[watch] and [[notify]]: parsed, checked with file:line, and the Apprise URL never quoted."""

from __future__ import annotations

import pytest

from lab.config import ConfigError, parse_config, parse_quiet_hours, render_config
from lab.secrets import SecretRef

GOOD = """\
[watch]
listen = "127.0.0.1:9999"
textfile = "/tmp/hlcon.prom"
fault_after = "1m"
digest = "08:00"

[[notify]]
name = "phone"
url = "env:HLCON_NTFY_URL"
min_severity = "critical"
domains = ["cert", "backup"]
quiet_hours = "22:00-07:00"
hold = "30s"

[[notify]]
name = "am"
kind = "alertmanager"
url = "http://127.0.0.1:9093"
"""


def test_watch_and_notify_parse_with_defaults() -> None:
    config = parse_config(GOOD, "w.toml")
    assert config.watch.listen == "127.0.0.1:9999" and config.watch.fault_after == 60.0
    assert config.watch.digest == "08:00" and config.watch.repost == 300.0
    phone, am = config.notify
    assert (phone.name, phone.kind, phone.min_severity) == ("phone", "apprise", "critical")
    assert phone.domains == ("cert", "backup") and phone.hold == 30.0
    assert SecretRef.parse(phone.url) == SecretRef("env", "HLCON_NTFY_URL")
    assert (am.kind, am.url, am.hold) == ("alertmanager", "http://127.0.0.1:9093", 120.0)
    # config check renders it back to an equal config
    assert parse_config(render_config(config), "w.toml") == config


def test_default_config_listens_on_loopback_and_has_no_channel() -> None:
    config = parse_config("", "e.toml")
    assert config.watch.listen.startswith("127.0.0.1:") and config.notify == ()


@pytest.mark.parametrize(
    ("text", "line", "key", "says"),
    [
        ('[watch]\nlisten = "everywhere"\n', 2, "watch.listen", "host:port"),
        ('[watch]\ndigest = "8am"\n', 2, "watch.digest", "HH:MM"),
        ('[[notify]]\nname = "x"\nurl = "env:X"\nkind = "slack"\n', 4, "notify[0].kind", "apprise"),
        ('[[notify]]\nname = "x"\nurl = "env:X"\nmin_severity = "bad"\n', 4,
         "notify[0].min_severity", "critical"),
        ('[[notify]]\nname = "x"\nurl = "env:X"\ndomains = ["vm"]\n', 4, "notify[0].domains",
         "unknown domain"),
        ('[[notify]]\nname = "x"\nurl = "env:X"\nquiet_hours = "22-7"\n', 4,
         "notify[0].quiet_hours", "HH:MM-HH:MM"),
        ('[[notify]]\nname = "x"\nurl = "env:X"\nhold = "soon"\n', 4, "notify[0].hold", "duration"),
        ('[[notify]]\nname = "x"\n', 1, "notify[0].url", "missing required key"),
        ('[[notify]]\nname = "x"\nkind = "alertmanager"\nurl = "127.0.0.1:9093"\n', 4,
         "notify[0].url", "base URL"),
        ('[[notify]]\nname = "a"\nurl = "env:X"\n[[notify]]\nname = "a"\nurl = "env:Y"\n', 5,
         "notify[1].name", "duplicate name"),
    ],
)  # fmt: skip
def test_bad_watch_and_notify_name_file_line_and_key(
    text: str, line: int, key: str, says: str
) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(text, "w.toml")
    problem = err.value.problems[0]
    assert (problem.line, problem.key) == (line, key), str(err.value)
    assert says in problem.message and str(err.value).startswith(f"w.toml:{line}:")


def test_a_plain_apprise_url_is_refused_and_never_quoted_back() -> None:
    token = "tk_s3cr3t_0123456789"
    with pytest.raises(ConfigError) as err:
        parse_config(f'[[notify]]\nname = "x"\nurl = "ntfy://{token}@ntfy.sh/lab"\n', "w.toml")
    assert "secret reference" in str(err.value) and token not in str(err.value)


def test_quiet_hours_parse() -> None:
    assert parse_quiet_hours("22:00-07:30") == ((22, 0), (7, 30))
    assert parse_quiet_hours("07:00-07:00") is None and parse_quiet_hours("7-8") is None

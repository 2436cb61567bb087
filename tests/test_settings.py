"""Settings: parsing, precedence (flag > environment > .env > default), cross-checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from settings import BY_ENV, DEV_SECRET_KEY, SETTINGS, VARIABLES, Context, load_settings
from settings.errors import ConfigError
from tests.support import SECRET

LINUX = Context(platform="linux", usable_cpus=lambda: 2)


def load(env=None, flags=None, dotenv=None, context=LINUX):
    return load_settings(env or {}, flags, dotenv_path=dotenv, context=context)


def test_defaults():
    s = load()
    assert (s.env, s.launcher, s.host, s.port) == ("development", "dev", "0.0.0.0", 5000)
    assert s.workers == 2 and s.proxy_hops == 0 and s.log_level == "info"
    assert s.secret_key == DEV_SECRET_KEY and s.debug is True
    assert s.graceful_timeout < 10
    assert s.source("PORT") == "default"


def test_precedence_flag_over_environment_over_dotenv_over_default(tmp_path: Path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("PORT=7001\nHOST=127.0.0.1\nLOG_LEVEL=debug\n")
    s = load({"PORT": "7002", "HOST": "127.0.0.2"}, {"port": "7003"}, dotenv)
    assert s.port == 7003 and s.source("PORT") == "flag --port"
    assert s.host == "127.0.0.2" and s.source("HOST") == "environment"
    assert s.log_level == "debug" and s.source("LOG_LEVEL") == ".env"
    assert s.workers == 2 and s.source("WEB_CONCURRENCY").startswith("default")


def test_dotenv_never_overrides_the_environment(tmp_path: Path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("APP_ENV=testing\n")
    assert load({"APP_ENV": "development"}, dotenv=dotenv).env == "development"
    assert load({}, dotenv=dotenv).env == "testing"


def test_empty_value_counts_as_unset():
    assert load({"PORT": ""}).port == 5000


def test_env_file_none_reads_no_dotenv(tmp_path: Path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("PORT=7001\n")
    assert load({"ENV_FILE": "none"}, dotenv=dotenv).port == 5000
    assert load({"ENV_FILE": str(dotenv)}).port == 7001
    with pytest.raises(ConfigError, match="ENV_FILE"):
        load({"ENV_FILE": str(tmp_path / "missing")})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "abc"),
        ("PORT", "0"),
        ("PORT", "70000"),
        ("PORT", "-1"),
        ("PORT", "80.5"),
        ("WEB_CONCURRENCY", "0"),
        ("WEB_CONCURRENCY", "two"),
        ("APP_LAUNCHER", "nginx"),
        ("APP_ENV", "prod"),
        ("HOST", "not a host"),
        ("TRUSTED_PROXY_HOPS", "-1"),
        ("GRACEFUL_TIMEOUT", "0"),
        ("GRACEFUL_TIMEOUT", "soon"),
        ("LOG_LEVEL", "verbose"),
        ("FLASK_DEBUG", "maybe"),
        ("MAX_CONTENT_LENGTH", "1MB"),
        ("WORKER_CLASS", "eventlet"),
        ("LOG_FORMAT", "xml"),
        ("WEB_THREADS", "0"),
        ("KEEPALIVE", "nan"),
    ],
)
def test_bad_values_name_the_variable_and_the_accepted_values(name: str, value: str):
    with pytest.raises(ConfigError) as caught:
        load({name: value})
    message = str(caught.value)
    assert message.startswith(f"{name}={value!r}")
    assert "expected" in message


def test_unknown_launcher_lists_the_valid_ones():
    with pytest.raises(ConfigError) as caught:
        load({"APP_LAUNCHER": "nginx"})
    for name in ("auto", "dev", "gunicorn", "waitress"):
        assert name in str(caught.value)


@pytest.mark.parametrize(
    "word,expected",
    [
        ("1", True),
        ("TRUE", True),
        ("yes", True),
        ("on", True),
        ("0", False),
        ("false", False),
        ("No", False),
        ("off", False),
    ],
)
def test_booleans_from_a_fixed_word_list(word: str, expected: bool):
    assert load({"FLASK_DEBUG": word}).debug is expected


@pytest.mark.parametrize(
    ("env", "platform", "expected"),
    [
        ("development", "linux", "dev"),
        ("development", "win32", "dev"),
        ("development", "darwin", "dev"),
        ("testing", "linux", "dev"),
        ("testing", "win32", "dev"),
        ("production", "linux", "gunicorn"),
        ("production", "darwin", "gunicorn"),
        ("production", "win32", "waitress"),
        ("production", "cygwin", "gunicorn"),
    ],
)
def test_auto_launcher_for_every_environment_and_platform(env: str, platform: str, expected: str):
    s = load(
        {"APP_ENV": env, "SECRET_KEY": SECRET, "FLASK_DEBUG": "0"},
        context=Context(platform=platform, usable_cpus=lambda: 1),
    )
    assert s.launcher == expected
    assert "auto chose" in s.source("APP_LAUNCHER")


def test_replit_deployment_means_production():
    s = load_settings({"REPLIT_DEPLOYMENT": "1", "SECRET_KEY": SECRET}, dotenv_path=None)
    assert s.env == "production" and s.launcher == "gunicorn" and s.debug is False
    assert "REPLIT_DEPLOYMENT=1" in s.source("APP_ENV")


def test_legacy_flask_env_is_honoured_when_app_env_is_unset():
    s = load({"FLASK_ENV": "production", "SECRET_KEY": SECRET})
    assert s.env == "production" and "FLASK_ENV" in s.source("APP_ENV")
    assert load({"FLASK_ENV": "production", "APP_ENV": "testing"}).env == "testing"
    with pytest.raises(ConfigError, match="^FLASK_ENV="):
        load({"FLASK_ENV": "staging"})


def test_production_requires_a_secret_key():
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load({"APP_ENV": "production"})
    with pytest.raises(ConfigError, match="too weak"):
        load({"APP_ENV": "production", "SECRET_KEY": "short"})


def test_production_refuses_debug():
    with pytest.raises(ConfigError, match="FLASK_DEBUG"):
        load({"APP_ENV": "production", "SECRET_KEY": SECRET, "FLASK_DEBUG": "1"})


def test_production_refuses_the_dev_server_unless_allowed():
    env = {"APP_ENV": "production", "SECRET_KEY": SECRET, "APP_LAUNCHER": "dev"}
    with pytest.raises(ConfigError, match="ALLOW_DEV_SERVER"):
        load(env)
    assert load({**env, "ALLOW_DEV_SERVER": "1"}).launcher == "dev"


def test_loopback_host_in_a_replit_deployment_is_an_error():
    ctx = Context(platform="linux", replit_deployment=True, usable_cpus=lambda: 1)
    with pytest.raises(ConfigError, match="never opened"):
        load({"SECRET_KEY": SECRET, "HOST": "127.0.0.1"}, context=ctx)


def test_the_secret_is_never_shown():
    rows = load({"SECRET_KEY": SECRET}).describe()
    assert SECRET not in repr(rows)
    assert SECRET not in repr(load({"SECRET_KEY": SECRET}))


def test_every_setting_is_declared_once_with_help():
    names = [s.env for s in SETTINGS]
    assert len(names) == len(set(names))
    assert all(s.help and s.convert.accepted for s in SETTINGS)


def test_a_declaration_is_the_whole_setting():
    """Attribute, variable, converter, default and help: read back from one field."""
    port = BY_ENV["PORT"]
    assert (port.attr, port.flag, port.shown_default) == ("port", "--port", "5000")
    assert port.convert.accepted == "a whole number from 1 to 65535"
    assert BY_ENV["WORKER_CLASS"].convert.choices == ("gevent", "gthread", "sync")  # its Literal
    assert set(VARIABLES) >= {s.env for s in SETTINGS} | {"FLASK_ENV", "ENV_FILE"}


def test_debug_is_on_by_default_only_where_the_dev_launcher_runs():
    assert load().debug is True
    gunicorn = load({"APP_LAUNCHER": "gunicorn"})
    assert gunicorn.debug is False and "gunicorn" in gunicorn.source("FLASK_DEBUG")

""".env.example and the README's settings table are made from the declarations."""

from settings import SETTINGS, reference


def test_env_example_and_readme_are_current():
    assert reference.main([]) == 0, "run: python -m settings.reference --write"


def test_env_example_lists_every_variable_of_the_contract():
    text = reference.ENV_EXAMPLE.read_text()
    for name in (
        "APP_ENV",
        "APP_LAUNCHER",
        "HOST",
        "PORT",
        "WEB_CONCURRENCY",
        "SECRET_KEY",
        "TRUSTED_PROXY_HOPS",
        "GRACEFUL_TIMEOUT",
        "LOG_LEVEL",
    ):
        assert f"# {name}=" in text
    assert all(f"# {s.env}=" in text for s in SETTINGS)

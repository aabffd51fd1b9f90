import pytest
from erp_app.config import ConfigError, load, port_from, redact_url

BASE = {"ERP_VERSION": "1.1.0"}
SERVE = {
    **BASE,
    "ERP_DATABASE_URL": "postgresql://erp:hunter2@db:5432/erp",
    "ERP_SECRET_KEY": "k" * 32,
}


def test_defaults():
    settings = load(SERVE, need_database=True, need_secret=True)
    assert settings.port == 8000
    assert settings.log_level == "INFO"
    assert settings.shutdown_grace_seconds == 10
    assert settings.shutdown_drain_seconds == 3
    assert settings.fault.mode == "none"


def test_secrets_never_appear_in_repr():
    text = repr(load(SERVE, need_database=True, need_secret=True))
    assert "hunter2" not in text
    assert "k" * 32 not in text


@pytest.mark.parametrize(
    ("env", "kwargs", "message"),
    [
        ({}, {}, "ERP_VERSION is not set"),
        ({"ERP_VERSION": "latest"}, {}, "not a release version"),
        (BASE, {"need_database": True}, "ERP_DATABASE_URL is required"),
        ({**BASE, "ERP_DATABASE_URL": "mysql://x/y"}, {"need_database": True}, "postgresql://"),
        ({**SERVE, "ERP_SECRET_KEY": " "}, {"need_secret": True}, "ERP_SECRET_KEY is required"),
        ({**BASE, "ERP_PORT": "http"}, {}, "ERP_PORT must be an integer"),
        ({**BASE, "ERP_PORT": "70000"}, {}, "ERP_PORT must be between"),
        ({**BASE, "ERP_LOG_LEVEL": "loud"}, {}, "ERP_LOG_LEVEL must be one of"),
        ({**BASE, "ERP_SHUTDOWN_GRACE_SECONDS": "0"}, {}, "must be > 0"),
        ({**BASE, "ERP_SHUTDOWN_DRAIN_SECONDS": "10"}, {}, "below the grace period"),
        ({**BASE, "ERP_FAULT": "boom"}, {}, "ERP_FAULT must be one of"),
    ],
)
def test_config_errors_are_one_line_naming_the_variable(env, kwargs, message):
    with pytest.raises(ConfigError, match=message) as raised:
        load(env, **kwargs)
    assert "\n" not in str(raised.value)


def test_database_and_secret_only_required_when_asked():
    assert load(BASE).database_url == ""


def test_short_grace_shortens_the_default_drain():
    settings = load({**BASE, "ERP_SHUTDOWN_GRACE_SECONDS": "4"})
    assert settings.shutdown_drain_seconds == 2


def test_port_from():
    assert port_from({}) == 8000
    assert port_from({"ERP_PORT": "18080"}) == 18080


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://erp:s3cr@t@db:5432/erp", "postgresql://erp:***@db:5432/erp"),
        ("postgresql://erp@db/erp", "postgresql://erp@db/erp"),
        (
            "postgresql://db/erp?user=erp&password=pw&sslmode=require",
            "postgresql://db/erp?user=erp&password=***&sslmode=require",
        ),
    ],
)
def test_redact_url(url, shown):
    assert redact_url(url) == shown

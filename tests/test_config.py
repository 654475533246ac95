"""Settings: precedence, environment variables, relative paths, bad input, secrets.

Every test passes its own ``environ`` and ``cwd`` to :func:`load_settings`, so the
developer's real environment and working folder never leak in.
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

from crm_batch.config import (
    ENV_CONFIG,
    ENV_DATA_DIR,
    ENV_DATABASE_PASSWORD,
    ENV_DATABASE_URL,
    ENV_REPORTS_DIR,
    ENV_SMTP_PASSWORD,
    ENV_SQL_DIR,
    ENV_TIMEZONE,
    ENV_WORKBOOKS_DIR,
    Settings,
    find_config_file,
    load_settings,
)
from crm_batch.errors import ConfigError

SECRET = "s3cr3t-Pa55"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty current folder, away from the config files."""
    folder = tmp_path / "cwd"
    folder.mkdir()
    return folder


def write_config(folder: Path, content: str, name: str = "crm_batch.toml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(content), encoding="utf-8")
    return path


def config_error(*args: object, **kwargs: object) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(*args, **kwargs)  # type: ignore[arg-type]
    return str(caught.value)


def shown(settings: Settings) -> str:
    """Everything a log line, a traceback or a debug dump could render of the settings."""
    return "\n".join(
        [
            str(settings),
            repr(settings),
            f"{settings}",
            str(settings.model_dump()),
            repr(settings.model_dump()),
            settings.model_dump_json(),
            json.dumps(settings.model_dump(mode="json")),
            str(settings.database_url),
            repr(settings.database_url),
        ]
    )


# -- precedence ------------------------------------------------------------------------


def test_defaults_without_any_file(workdir: Path) -> None:
    settings = load_settings(environ={}, cwd=workdir)
    assert settings.source == "defaults"
    assert settings.database_url.get_backend_name() == "duckdb"
    assert settings.database_url.database == str(workdir.resolve() / "var" / "demo.duckdb")
    assert settings.timezone == "Asia/Shanghai"
    assert settings.data_dir == workdir.resolve() / "var"


def test_file_beats_defaults(tmp_path: Path, workdir: Path) -> None:
    path = write_config(
        tmp_path / "conf",
        """
        [database]
        url = "postgresql://crm@db.file/crm"
        [general]
        timezone = "Europe/Berlin"
        language = "en"
        """,
    )
    settings = load_settings(path, environ={}, cwd=workdir)
    assert settings.database_url.host == "db.file"
    assert settings.timezone == "Europe/Berlin"
    assert settings.language == "en"
    assert settings.source == str(path)


def test_environment_beats_file_and_cli_beats_environment(tmp_path: Path, workdir: Path) -> None:
    path = write_config(tmp_path / "conf", '[database]\nurl = "postgresql://crm@db.file/crm"\n')
    env = {ENV_DATABASE_URL: "postgresql://crm@db.env/crm"}
    assert load_settings(path, environ=env, cwd=workdir).database_url.host == "db.env"
    from_cli = load_settings(path, database_url="mysql://crm@db.cli/crm", environ=env, cwd=workdir)
    assert from_cli.database_url.host == "db.cli"


def test_implicit_config_file_in_the_current_folder(workdir: Path) -> None:
    write_config(workdir, '[general]\ncompany_name = "Here Ltd."\n')
    assert load_settings(environ={}, cwd=workdir).company_name == "Here Ltd."


def test_config_file_named_by_the_environment(tmp_path: Path, workdir: Path) -> None:
    path = write_config(tmp_path / "elsewhere", '[general]\ncompany_name = "Env Ltd."\n', "x.toml")
    write_config(workdir, '[general]\ncompany_name = "Here Ltd."\n')
    settings = load_settings(environ={ENV_CONFIG: str(path)}, cwd=workdir)
    assert settings.company_name == "Env Ltd."
    assert find_config_file(None, workdir, environ={ENV_CONFIG: str(path)}) == path


def test_explicit_file_beats_the_environments_file(tmp_path: Path, workdir: Path) -> None:
    chosen = write_config(tmp_path / "a", '[general]\ncompany_name = "Chosen"\n')
    other = write_config(tmp_path / "b", '[general]\ncompany_name = "Other"\n')
    settings = load_settings(chosen, environ={ENV_CONFIG: str(other)}, cwd=workdir)
    assert settings.company_name == "Chosen"


# -- every documented environment variable ---------------------------------------------


def test_timezone_from_the_environment(workdir: Path) -> None:
    assert load_settings(environ={ENV_TIMEZONE: "UTC"}, cwd=workdir).timezone == "UTC"


def test_unknown_timezone_in_the_environment_names_the_variable(workdir: Path) -> None:
    message = config_error(environ={ENV_TIMEZONE: "Mars/Olympus"}, cwd=workdir)
    assert ENV_TIMEZONE in message
    assert "Mars/Olympus" in message


@pytest.mark.parametrize(
    ("variable", "attribute"),
    [
        (ENV_DATA_DIR, "data_dir"),
        (ENV_WORKBOOKS_DIR, "workbooks_dir"),
        (ENV_REPORTS_DIR, "reports_dir"),
        (ENV_SQL_DIR, "sql_dir"),
    ],
)
def test_folders_from_the_environment(
    tmp_path: Path, workdir: Path, variable: str, attribute: str
) -> None:
    target = tmp_path / "from-env" / attribute
    settings = load_settings(environ={variable: str(target)}, cwd=workdir)
    assert getattr(settings, attribute) == target


def test_data_dir_from_the_environment_moves_the_demo_database(
    tmp_path: Path, workdir: Path
) -> None:
    settings = load_settings(environ={ENV_DATA_DIR: str(tmp_path / "d")}, cwd=workdir)
    assert settings.database_url.database == str(tmp_path / "d" / "demo.duckdb")


def test_smtp_password_from_the_environment(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_SMTP_PASSWORD, SECRET)
    settings = load_settings(environ={}, cwd=workdir)
    assert settings.smtp_password() == SECRET
    assert SECRET not in shown(settings)


# -- relative paths --------------------------------------------------------------------


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path, workdir: Path) -> None:
    conf = tmp_path / "conf"
    (conf / "secrets").mkdir(parents=True)
    (conf / "secrets" / "db.txt").write_text(SECRET + "\n", encoding="utf-8")
    path = write_config(
        conf,
        """
        [database]
        url = "postgresql://crm@db.example/crm"
        password_file = "secrets/db.txt"
        [paths]
        data_dir = "data"
        workbooks_dir = "out/wb"
        reports_dir = "../reports"
        sql_dir = "my_sql"
        """,
    )
    settings = load_settings(path, environ={}, cwd=workdir)
    assert settings.data_dir == conf.resolve() / "data"
    assert settings.workbooks_dir == conf.resolve() / "out" / "wb"
    assert settings.reports_dir == conf.resolve() / ".." / "reports"
    assert settings.sql_dir == conf.resolve() / "my_sql"
    assert settings.database_url.password == SECRET


def test_relative_embedded_database_resolves_against_the_config_folder(
    tmp_path: Path, workdir: Path
) -> None:
    path = write_config(tmp_path / "conf", '[database]\nurl = "sqlite:///shop.sqlite"\n')
    settings = load_settings(path, environ={}, cwd=workdir)
    assert settings.database_url.database == str((tmp_path / "conf").resolve() / "shop.sqlite")


def test_relative_paths_from_cli_and_environment_resolve_against_the_working_folder(
    tmp_path: Path, workdir: Path
) -> None:
    path = write_config(tmp_path / "conf", '[paths]\ndata_dir = "data"\n')
    from_cli = load_settings(path, database_url="sqlite:///cli.sqlite", environ={}, cwd=workdir)
    assert from_cli.database_url.database == str(workdir.resolve() / "cli.sqlite")
    from_env = load_settings(
        path,
        environ={"CRM_BATCH_DATABASE_URL": "duckdb:///env.duckdb", ENV_DATA_DIR: "envdata"},
        cwd=workdir,
    )
    assert from_env.database_url.database == str(workdir.resolve() / "env.duckdb")
    assert from_env.data_dir == workdir.resolve() / "envdata"


# -- bad input -------------------------------------------------------------------------


def test_missing_config_file_is_named(tmp_path: Path, workdir: Path) -> None:
    missing = tmp_path / "nope" / "crm_batch.toml"
    message = config_error(missing, environ={}, cwd=workdir)
    assert str(missing) in message
    assert "not found" in message
    message = config_error(environ={ENV_CONFIG: str(missing)}, cwd=workdir)
    assert str(missing) in message
    assert ENV_CONFIG in message


@pytest.mark.parametrize(
    ("content", "dotted"),
    [
        ("[database]\npasswrod = 'x'\n", "database.passwrod"),
        ("[thresholds]\ntier_a_revenue = 5\n", "thresholds.tier_a_revenue"),
        ("[databse]\nurl = 'sqlite://'\n", "databse"),
        ("[[teams]]\nname = 'North'\nmanger_email = 'a@b.c'\n", "teams.0.manger_email"),
    ],
)
def test_unknown_key_is_named_with_its_path_and_the_file(
    tmp_path: Path, workdir: Path, content: str, dotted: str
) -> None:
    path = write_config(tmp_path / "conf", content)
    message = config_error(path, environ={}, cwd=workdir)
    assert f"unknown key '{dotted}'" in message
    assert str(path) in message


@pytest.mark.parametrize(
    ("content", "key", "expected"),
    [
        ("[thresholds]\nactive_days = 'ninety'\n", "thresholds.active_days", "integer"),
        ("[thresholds]\ndiamond_share = 'a fifth'\n", "thresholds.diamond_share", "number"),
        ("[email]\nenabled = 'yes'\n", "email.enabled", "boolean"),
        ("[general]\ncompany_name = 42\n", "general.company_name", "string"),
        ("teams = 'North'\n", "teams", "list"),
        ("[schedule]\nnightly_at = 'late'\n", "schedule.nightly_at", "time of day"),
    ],
)
def test_wrong_type_names_key_file_and_expected_type(
    tmp_path: Path, workdir: Path, content: str, key: str, expected: str
) -> None:
    path = write_config(tmp_path / "conf", content)
    message = config_error(path, environ={}, cwd=workdir)
    assert f"{key}: expected {expected}" in message
    assert str(path) in message


def test_value_out_of_range_is_named(tmp_path: Path, workdir: Path) -> None:
    path = write_config(tmp_path / "conf", "[thresholds]\nactive_days = 120\ndormant_days = 100\n")
    message = config_error(path, environ={}, cwd=workdir)
    assert "thresholds.dormant_days" in message
    assert "active_days" in message


def test_invalid_toml_names_the_file(tmp_path: Path, workdir: Path) -> None:
    path = write_config(tmp_path / "conf", "[database\nurl = \n")
    message = config_error(path, environ={}, cwd=workdir)
    assert str(path) in message
    assert "not valid TOML" in message


def test_unknown_timezone_in_the_file(tmp_path: Path, workdir: Path) -> None:
    path = write_config(tmp_path / "conf", '[general]\ntimezone = "Asia/Beijing"\n')
    message = config_error(path, environ={}, cwd=workdir)
    assert "general.timezone" in message
    assert "Asia/Beijing" in message
    assert str(path) in message


def test_duplicate_team_names(tmp_path: Path, workdir: Path) -> None:
    path = write_config(tmp_path / "conf", "[[teams]]\nname = 'A'\n[[teams]]\nname = 'A'\n")
    assert "'A' appears twice" in config_error(path, environ={}, cwd=workdir)


@pytest.mark.parametrize(
    "url", ["not a url", f"postgresql://crm:{SECRET}@db:notaport/crm", "://nothing"]
)
def test_invalid_database_url_is_named_without_echoing_it(workdir: Path, url: str) -> None:
    for kwargs in ({"database_url": url}, {"environ": {ENV_DATABASE_URL: url}}):
        kwargs.setdefault("environ", {})
        message = config_error(cwd=workdir, **kwargs)
        assert "not a valid SQLAlchemy database URL" in message
        assert SECRET not in message


# -- secrets ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://crm:{SECRET}@db.example/crm",
        f"postgresql://crm@db.example/crm?password={SECRET}",
    ],
)
def test_password_in_the_files_url_is_rejected(tmp_path: Path, workdir: Path, url: str) -> None:
    path = write_config(tmp_path / "conf", f'[database]\nurl = "{url}"\n')
    for env in ({}, {ENV_DATABASE_URL: "postgresql://crm@db.env/crm"}):
        message = config_error(path, environ=env, cwd=workdir)
        assert "database.url" in message
        assert "password" in message
        assert str(path) in message
        assert SECRET not in message


def test_password_from_the_environment(tmp_path: Path, workdir: Path) -> None:
    path = write_config(tmp_path / "conf", '[database]\nurl = "postgresql://crm@db.example/crm"\n')
    settings = load_settings(path, environ={ENV_DATABASE_PASSWORD: SECRET}, cwd=workdir)
    assert settings.database_url.password == SECRET
    assert settings.database_url.username == "crm"
    assert SECRET not in shown(settings)


def test_password_from_the_password_file(tmp_path: Path, workdir: Path) -> None:
    secret_file = tmp_path / "outside" / "pw"
    secret_file.parent.mkdir()
    secret_file.write_text(f"{SECRET}\n", encoding="utf-8")
    path = write_config(
        tmp_path / "conf",
        f"""
        [database]
        url = "postgresql://crm@db.example/crm"
        password_file = "{secret_file.as_posix()}"
        """,
    )
    settings = load_settings(path, environ={}, cwd=workdir)
    assert settings.database_url.password == SECRET, "read without the trailing newline"
    assert SECRET not in shown(settings)


def test_environment_password_beats_the_password_file(tmp_path: Path, workdir: Path) -> None:
    path = write_config(
        tmp_path / "conf",
        '[database]\nurl = "postgresql://crm@db/crm"\npassword_file = "missing.txt"\n',
    )
    settings = load_settings(path, environ={ENV_DATABASE_PASSWORD: SECRET}, cwd=workdir)
    assert settings.database_url.password == SECRET


def test_missing_password_file_is_named(tmp_path: Path, workdir: Path) -> None:
    path = write_config(
        tmp_path / "conf",
        '[database]\nurl = "postgresql://crm@db/crm"\npassword_file = "missing.txt"\n',
    )
    message = config_error(path, environ={}, cwd=workdir)
    assert "database.password_file" in message
    assert "missing.txt" in message


def test_password_in_an_environment_url_never_shows(workdir: Path) -> None:
    env = {ENV_DATABASE_URL: f"postgresql://crm:{SECRET}@db.example/crm?password={SECRET}"}
    settings = load_settings(environ=env, cwd=workdir)
    assert settings.database_url.password == SECRET, "the engine still gets it"
    text = shown(settings)
    assert SECRET not in text
    assert "db.example" in text, "the URL is still recognisable"


def test_wrong_type_next_to_a_password_does_not_echo_it(tmp_path: Path, workdir: Path) -> None:
    path = write_config(
        tmp_path / "conf",
        f'[database]\nurl = "postgresql://crm:{SECRET}@db/crm"\nconnect_timeout_seconds = "x"\n',
    )
    assert SECRET not in config_error(path, environ={}, cwd=workdir)


def test_settings_are_frozen(workdir: Path) -> None:
    settings = load_settings(environ={}, cwd=workdir)
    with pytest.raises(ValueError, match="frozen"):
        settings.timezone = "UTC"  # type: ignore[misc]


def test_every_environment_variable_is_documented_in_the_readme() -> None:
    """Every variable config.py reads appears in the README's configuration reference."""
    readme = Path(__file__).resolve().parent.parent / "README.md"
    if not readme.is_file():
        pytest.skip("no README.md yet")
    import crm_batch.config as config

    in_code = {v for k, v in vars(config).items() if k.startswith("ENV_") and isinstance(v, str)}
    in_readme = set(re.findall(r"CRM_BATCH_[A-Z_]+[A-Z]", readme.read_text(encoding="utf-8")))
    assert len(in_code) >= 9
    assert in_code - in_readme == set(), "read by config.py but not documented"


def test_sql_folder_defaults_to_the_shipped_queries_outside_the_repository(workdir: Path) -> None:
    from crm_batch.config import SHIPPED_SQL_DIR

    settings = load_settings(environ={}, cwd=workdir)
    assert settings.sql_dir == SHIPPED_SQL_DIR
    assert (SHIPPED_SQL_DIR / "customer_facts.sql").is_file()
    (workdir / "sql").mkdir()
    assert load_settings(environ={}, cwd=workdir).sql_dir == workdir.resolve() / "sql"


def test_the_committed_example_settings_load_and_name_the_demo_teams() -> None:
    from crm_batch.source.demo import TEAMS

    repo = Path(__file__).resolve().parents[1]
    settings = load_settings(repo / "crm_batch.toml", environ={}, cwd=repo)
    assert [team.name for team in settings.teams] == [team.name for team in TEAMS]
    assert settings.sql_dir == repo / "sql"
    assert settings.database_url.get_backend_name() == "duckdb"

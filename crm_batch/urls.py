"""Database URLs: the drivers crm-batch routes bare dialect names to, and the one way a
URL is shown to people (logs, errors, ``status``) with every secret masked.

A leaf module (SQLAlchemy's URL type only), so settings and the database layer both use
it without importing each other.
"""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url

#: Drivers we install: a bare ``postgresql://`` or ``mysql://`` URL is routed to them.
_DEFAULT_DRIVERS = {"postgresql": "psycopg", "mysql": "pymysql", "mariadb": "pymysql"}

#: URL query keys whose values are secrets (drivers accept ``?password=...`` too).
_SECRET_QUERY_KEYS = frozenset({"password", "passwd", "pwd", "sslpassword", "secret", "token"})


def normalize_url(url: URL | str) -> URL:
    """Route bare dialect names to the drivers crm-batch installs."""
    url = make_url(url)
    backend, driver = url.get_backend_name(), url.get_driver_name()
    wanted = _DEFAULT_DRIVERS.get(backend)
    if wanted and "+" not in url.drivername and driver != wanted:
        url = url.set(drivername=f"{backend}+{wanted}")
    return url


def safe_url(url: URL | str) -> str:
    """The URL as text with the password (also a ``?password=`` query) shown as ``***``."""
    url = make_url(url)
    secrets = {key: "***" for key in url.query if key.lower() in _SECRET_QUERY_KEYS}
    if secrets:
        url = url.update_query_dict(secrets)
    return url.render_as_string(hide_password=True).replace("=%2A%2A%2A", "=***")

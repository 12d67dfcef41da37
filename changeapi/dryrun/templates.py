"""A baseline's template on a shadow server of any engine: the one choice of builder per engine.

PostgreSQL's, MySQL/MariaDB's and SQLite's builders each apply the baseline by the one apply
path with that vendor's schema editor; callers that only need the template to exist (the
baseline build, the catalog a drift report or a verification reads) ask here.
"""

from __future__ import annotations

from changeapi.dryrun.mysql_session import template_build as mysql_template_build
from changeapi.dryrun.run import template_build
from changeapi.dryrun.sqlite_session import template_build as sqlite_template_build
from changeapi.intake.plan import Plan
from changeapi.shadow.engine_servers import MySqlShadowServer, SqliteShadowServer
from changeapi.shadow.servers import AnyShadowServer


def baseline_template_build(*, server: AnyShadowServer, name: str, baseline: Plan) -> bool:
    """Ensure the unseeded template of `baseline` exists on `server` as `name`; True if built now."""
    if isinstance(server, MySqlShadowServer):
        return mysql_template_build(server=server, name=name, baseline=baseline).built
    if isinstance(server, SqliteShadowServer):
        return sqlite_template_build(server=server, name=name, baseline=baseline).built
    return template_build(server=server, name=name, baseline=baseline)

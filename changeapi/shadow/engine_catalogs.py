"""The schema catalog queries of MySQL/MariaDB and SQLite (docs/drift.md), and reading them from
a copy of a baseline's template.

Each is one read-only query a team runs on production, returning the whole snapshot as one JSON
value in the shape PostgreSQL's catalog query has (`engine` says which engine wrote it;
sequences and extensions are empty). The service runs the very same text on a copy of the
baseline's template, so both sides of a drift report are read by one definition.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from changeapi.shadow import mysql_databases, sqlite_files
from changeapi.shadow.catalog import template_catalog
from changeapi.shadow.engine_servers import MySqlShadowServer, SqliteShadowServer
from changeapi.shadow.servers import AnyShadowServer

# Kept identical to the MariaDB query in docs/drift.md (a test compares them). MariaDB names a
# check constraint per table (a column's CHECK is named after the column), so its clause is
# found by table and name; MySQL names them per schema and has no CHECK_CONSTRAINTS.TABLE_NAME.
MARIADB_CATALOG_QUERY = """\
SELECT JSON_OBJECT(
  'engine',             'mysql',
  'server_version',     VERSION(),
  'server_version_num', CAST(SUBSTRING_INDEX(VERSION(), '.', 1) AS UNSIGNED) * 10000
                        + CAST(SUBSTRING_INDEX(SUBSTRING_INDEX(VERSION(), '.', 2), '.', -1) AS UNSIGNED) * 100
                        + CAST(SUBSTRING_INDEX(SUBSTRING_INDEX(SUBSTRING_INDEX(VERSION(), '-', 1), '.', 3), '.', -1) AS UNSIGNED),
  'schema',             DATABASE(),
  'extensions',         JSON_ARRAY(),
  'sequences',          JSON_ARRAY(),
  'tables', JSON_EXTRACT(COALESCE((
    SELECT JSON_ARRAYAGG(JSON_OBJECT(
             'name',        t.TABLE_NAME,
             'partitioned', JSON_EXTRACT(IF(t.CREATE_OPTIONS LIKE '%partitioned%', 'true', 'false'), '$'),
             'columns', JSON_EXTRACT(COALESCE((
               SELECT JSON_ARRAYAGG(JSON_OBJECT(
                        'name',      c.COLUMN_NAME,
                        'type',      c.COLUMN_TYPE,
                        'nullable',  JSON_EXTRACT(IF(c.IS_NULLABLE = 'YES', 'true', 'false'), '$'),
                        'default',   c.COLUMN_DEFAULT,
                        'collation', c.COLLATION_NAME,
                        'identity',  IF(c.EXTRA LIKE '%auto_increment%', 'by_default', NULL)))
               FROM information_schema.COLUMNS c
               WHERE c.TABLE_SCHEMA = t.TABLE_SCHEMA AND c.TABLE_NAME = t.TABLE_NAME), '[]'), '$')))
    FROM information_schema.TABLES t
    WHERE t.TABLE_SCHEMA = DATABASE() AND t.TABLE_TYPE = 'BASE TABLE'), '[]'), '$'),
  'indexes', JSON_EXTRACT(COALESCE((
    SELECT JSON_ARRAYAGG(JSON_OBJECT(
             'name',       s.INDEX_NAME,
             'table',      s.TABLE_NAME,
             'definition', CONCAT(IF(s.NON_UNIQUE = 0, 'CREATE UNIQUE INDEX ', 'CREATE INDEX '), s.INDEX_NAME,
                                  ' ON ', s.TABLE_NAME, ' USING ', s.INDEX_TYPE, ' (', s.COLUMNS, ')'),
             'unique',     JSON_EXTRACT(IF(s.NON_UNIQUE = 0, 'true', 'false'), '$'),
             'primary',    JSON_EXTRACT(IF(s.INDEX_NAME = 'PRIMARY', 'true', 'false'), '$'),
             'valid',      JSON_EXTRACT('true', '$'),
             'predicate',  NULL))
    FROM (SELECT x.TABLE_NAME, x.INDEX_NAME, MIN(x.NON_UNIQUE) AS NON_UNIQUE, MIN(x.INDEX_TYPE) AS INDEX_TYPE,
                 GROUP_CONCAT(CONCAT(COALESCE(x.COLUMN_NAME, '(expression)'),
                                     IF(x.SUB_PART IS NULL, '', CONCAT('(', x.SUB_PART, ')')),
                                     IF(x.COLLATION = 'D', ' DESC', ''))
                              ORDER BY x.SEQ_IN_INDEX SEPARATOR ', ') AS COLUMNS
          FROM information_schema.STATISTICS x
          WHERE x.TABLE_SCHEMA = DATABASE()
          GROUP BY x.TABLE_NAME, x.INDEX_NAME) s), '[]'), '$'),
  'constraints', JSON_EXTRACT(COALESCE((
    SELECT JSON_ARRAYAGG(JSON_OBJECT(
             'name',       k.CONSTRAINT_NAME,
             'table',      k.TABLE_NAME,
             'type',       CASE k.CONSTRAINT_TYPE WHEN 'PRIMARY KEY' THEN 'primary_key' WHEN 'UNIQUE' THEN 'unique'
                             WHEN 'FOREIGN KEY' THEN 'foreign_key' ELSE 'check' END,
             'definition', CASE k.CONSTRAINT_TYPE
                             WHEN 'CHECK' THEN CONCAT('CHECK (', (
                               SELECT cc.CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS cc
                               WHERE cc.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND cc.TABLE_NAME = k.TABLE_NAME
                                 AND cc.CONSTRAINT_NAME = k.CONSTRAINT_NAME), ')')
                             ELSE CONCAT(k.CONSTRAINT_TYPE, ' (', (
                               SELECT GROUP_CONCAT(u.COLUMN_NAME ORDER BY u.ORDINAL_POSITION SEPARATOR ', ')
                               FROM information_schema.KEY_COLUMN_USAGE u
                               WHERE u.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND u.TABLE_NAME = k.TABLE_NAME
                                 AND u.CONSTRAINT_NAME = k.CONSTRAINT_NAME), ')',
                               IF(k.CONSTRAINT_TYPE = 'FOREIGN KEY', (
                                 SELECT CONCAT(' REFERENCES ', r.REFERENCED_TABLE_NAME, '(', (
                                          SELECT GROUP_CONCAT(u.REFERENCED_COLUMN_NAME ORDER BY u.ORDINAL_POSITION SEPARATOR ', ')
                                          FROM information_schema.KEY_COLUMN_USAGE u
                                          WHERE u.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND u.TABLE_NAME = k.TABLE_NAME
                                            AND u.CONSTRAINT_NAME = k.CONSTRAINT_NAME), ')',
                                          ' ON UPDATE ', r.UPDATE_RULE, ' ON DELETE ', r.DELETE_RULE)
                                 FROM information_schema.REFERENTIAL_CONSTRAINTS r
                                 WHERE r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.TABLE_NAME = k.TABLE_NAME
                                   AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME), ''))
                           END,
             'validated',  JSON_EXTRACT('true', '$')))
    FROM information_schema.TABLE_CONSTRAINTS k
    WHERE k.CONSTRAINT_SCHEMA = DATABASE()), '[]'), '$')
) AS snapshot;
"""

_CHECK_BY_TABLE = "cc.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND cc.TABLE_NAME = k.TABLE_NAME\n"
# Kept identical to the MySQL query in docs/drift.md: MariaDB's, its check clause found by name.
MYSQL_CATALOG_QUERY = MARIADB_CATALOG_QUERY.replace(_CHECK_BY_TABLE, "cc.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA\n")

# Kept identical to the SQLite query in docs/drift.md. SQLite keeps no names for primary and
# foreign keys, so they are named after their table (and columns), as PostgreSQL would name them.
SQLITE_CATALOG_QUERY = """\
SELECT json_object(
  'engine',             'sqlite',
  'server_version',     sqlite_version(),
  'server_version_num', (SELECT CAST(substr(v, 1, instr(v, '.') - 1) AS INTEGER) * 1000000
                                + CAST(substr(r, 1, instr(r, '.') - 1) AS INTEGER) * 1000
                                + CAST(substr(r, instr(r, '.') + 1) AS INTEGER)
                         FROM (SELECT sqlite_version() AS v,
                                      substr(sqlite_version(), instr(sqlite_version(), '.') + 1) || '.0' AS r)),
  'schema',             'main',
  'extensions',         json_array(),
  'sequences',          json_array(),
  'tables', json((
    SELECT json_group_array(json_object(
             'name',        t.name,
             'partitioned', json('false'),
             'columns', json((
               SELECT json_group_array(json_object(
                        'name',      c.name,
                        'type',      c.type,
                        'nullable',  json(CASE WHEN c."notnull" THEN 'false' ELSE 'true' END),
                        'default',   c.dflt_value,
                        'collation', NULL,
                        'identity',  CASE WHEN c.pk = 1 AND upper(c.type) = 'INTEGER'
                                           AND (SELECT count(*) FROM pragma_table_xinfo(t.name) p WHERE p.pk > 0) = 1
                                      THEN 'by_default' END))
               FROM pragma_table_xinfo(t.name) c
               WHERE c.hidden <> 1))))
    FROM sqlite_schema t
    WHERE t.type = 'table' AND t.name NOT LIKE 'sqlite\\_%' ESCAPE '\\')),
  'indexes', json((
    SELECT json_group_array(json_object(
             'name',       i.name,
             'table',      t.name,
             'definition', CASE WHEN i."unique" THEN 'CREATE UNIQUE INDEX ' ELSE 'CREATE INDEX ' END
                           || i.name || ' ON ' || t.name || ' (' || (
                             SELECT group_concat(COALESCE(x.name, '(expression)')
                                                 || CASE WHEN x.coll <> 'BINARY' THEN ' COLLATE ' || x.coll ELSE '' END
                                                 || CASE WHEN x."desc" THEN ' DESC' ELSE '' END, ', ')
                             FROM pragma_index_xinfo(i.name) x WHERE x.key = 1) || ')',
             'unique',     json(CASE WHEN i."unique" THEN 'true' ELSE 'false' END),
             'primary',    json(CASE WHEN i.origin = 'pk' THEN 'true' ELSE 'false' END),
             'valid',      json('true'),
             'predicate',  CASE WHEN i.partial THEN (
                             SELECT trim(substr(s.sql, instr(upper(s.sql), ' WHERE ') + 7))
                             FROM sqlite_schema s WHERE s.type = 'index' AND s.name = i.name) END))
    FROM sqlite_schema t, pragma_index_list(t.name) i
    WHERE t.type = 'table' AND t.name NOT LIKE 'sqlite\\_%' ESCAPE '\\')),
  'constraints', json((
    SELECT json_group_array(json_object(
             'name',       k.name,
             'table',      k.tbl,
             'type',       k.type,
             'definition', k.definition,
             'validated',  json('true')))
    FROM (
      SELECT t.name || '_pkey' AS name, t.name AS tbl, 'primary_key' AS type,
             'PRIMARY KEY (' || (SELECT group_concat(p.name, ', ') FROM (
               SELECT p.name FROM pragma_table_xinfo(t.name) p WHERE p.pk > 0 ORDER BY p.pk) p) || ')' AS definition
      FROM sqlite_schema t
      WHERE t.type = 'table' AND t.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
        AND EXISTS (SELECT 1 FROM pragma_table_xinfo(t.name) p WHERE p.pk > 0)
      UNION ALL
      SELECT i.name, t.name, 'unique',
             'UNIQUE (' || (SELECT group_concat(x.name, ', ') FROM pragma_index_xinfo(i.name) x WHERE x.key = 1) || ')'
      FROM sqlite_schema t, pragma_index_list(t.name) i
      WHERE t.type = 'table' AND t.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND i.origin = 'u'
      UNION ALL
      SELECT t.name || '_' || group_concat(f."from", '_') || '_fkey', t.name, 'foreign_key',
             'FOREIGN KEY (' || group_concat(f."from", ', ') || ') REFERENCES ' || f."table" || '('
             || group_concat(f."to", ', ') || ') ON UPDATE ' || f.on_update || ' ON DELETE ' || f.on_delete
      FROM sqlite_schema t, pragma_foreign_key_list(t.name) f
      WHERE t.type = 'table' AND t.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
      GROUP BY t.name, f.id) k))
) AS snapshot;
"""


def mysql_catalog_query(server: MySqlShadowServer) -> str:
    """The documented query for the server's flavour (as it says in its version)."""
    return MARIADB_CATALOG_QUERY if server.flavor() == "mariadb" else MYSQL_CATALOG_QUERY


def mysql_catalog_read(server: MySqlShadowServer, database: str) -> dict[str, Any]:
    """The catalog query's output on `database`, read by the admin connection (information_schema
    only: no table's rows are read)."""
    with mysql_databases.admin_cursor(server) as cursor:
        cursor.execute(f"USE {mysql_databases.quote(database)}")
        cursor.execute(mysql_catalog_query(server))
        row = cursor.fetchone()
    assert row is not None
    return dict(json.loads(row[0]))


def sqlite_catalog_read(path: str) -> dict[str, Any]:
    """The catalog query's output on the database file `path`, opened read-only (the query
    itself reads sqlite_schema and pragmas only)."""
    connection = sqlite3.connect(f"{Path(path).as_uri()}?mode=ro", uri=True)
    try:
        row = connection.execute(SQLITE_CATALOG_QUERY).fetchone()
    finally:
        connection.close()
    assert row is not None
    return dict(json.loads(row[0]))


def mysql_template_catalog(server: MySqlShadowServer, *, template: str, name: str) -> dict[str, Any]:
    """The catalog of a MySQL/MariaDB template, read on a copy `name` of it that is dropped
    afterwards: the template itself is only ever read to be copied."""
    mysql_databases.database_copy(server, source=template, name=name)
    try:
        return mysql_catalog_read(server, name)
    finally:
        mysql_databases.database_drop(server, name)


def sqlite_template_catalog(server: SqliteShadowServer, *, template: str, name: str) -> dict[str, Any]:
    """The catalog of a SQLite template file, read on a copy `name` of it that is deleted afterwards."""
    sqlite_files.database_copy(server, source=template, name=name)
    try:
        return sqlite_catalog_read(str(sqlite_files.shadow_path(server, name)))
    finally:
        sqlite_files.database_drop(server, name)


def engine_template_catalog(server: AnyShadowServer, *, template: str, name: str) -> dict[str, Any]:
    """The catalog of a template on a server of any engine, read by that engine's documented
    query on a copy `name` of it that is dropped afterwards."""
    if isinstance(server, MySqlShadowServer):
        return mysql_template_catalog(server, template=template, name=name)
    if isinstance(server, SqliteShadowServer):
        return sqlite_template_catalog(server, template=template, name=name)
    return template_catalog(server, template=template, name=name)

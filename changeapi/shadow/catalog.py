"""The schema catalog query (docs/drift.md), and reading it from a baseline's template.

The same query a team runs on production is run here on a clone of the template, so the two
sides of a drift report are read by one definition and differ only where the schemas do.
"""

from __future__ import annotations

from typing import Any

from changeapi.shadow import provision
from changeapi.shadow.servers import ShadowServer

# Kept identical to the query in docs/drift.md (a test compares them): reads the catalog only.
CATALOG_QUERY = """\
SELECT json_build_object(
  'server_version',     current_setting('server_version'),
  'server_version_num', current_setting('server_version_num')::int,
  'schema',             n.nspname,
  'extensions', COALESCE((
    SELECT json_agg(json_build_object('name', e.extname, 'version', e.extversion) ORDER BY e.extname)
    FROM pg_extension e), '[]'),
  'tables', COALESCE((
    SELECT json_agg(json_build_object(
             'name',        c.relname,
             'partitioned', c.relkind = 'p',
             'columns', COALESCE((
               SELECT json_agg(json_build_object(
                        'name',      a.attname,
                        'type',      format_type(a.atttypid, a.atttypmod),
                        'nullable',  NOT a.attnotnull,
                        'default',   pg_get_expr(d.adbin, d.adrelid),
                        'collation', co.collname,
                        'identity',  CASE a.attidentity WHEN 'a' THEN 'always' WHEN 'd' THEN 'by_default' END
                      ) ORDER BY a.attnum)
               FROM pg_attribute a
               LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
               LEFT JOIN pg_collation co ON co.oid = a.attcollation
               WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '[]')
           ) ORDER BY c.relname)
    FROM pg_class c
    WHERE c.relnamespace = n.oid AND c.relkind IN ('r', 'p')), '[]'),
  'indexes', COALESCE((
    SELECT json_agg(json_build_object(
             'name',       i.relname,
             'table',      c.relname,
             'definition', pg_get_indexdef(i.oid),
             'unique',     x.indisunique,
             'primary',    x.indisprimary,
             'valid',      x.indisvalid,
             'predicate',  pg_get_expr(x.indpred, x.indrelid)
           ) ORDER BY i.relname)
    FROM pg_index x
    JOIN pg_class i ON i.oid = x.indexrelid
    JOIN pg_class c ON c.oid = x.indrelid
    WHERE c.relnamespace = n.oid AND c.relkind IN ('r', 'p')), '[]'),
  'constraints', COALESCE((
    SELECT json_agg(json_build_object(
             'name',       k.conname,
             'table',      c.relname,
             'type',       CASE k.contype WHEN 'p' THEN 'primary_key' WHEN 'u' THEN 'unique'
                             WHEN 'f' THEN 'foreign_key' WHEN 'c' THEN 'check' ELSE 'exclusion' END,
             'definition', pg_get_constraintdef(k.oid),
             'validated',  k.convalidated
           ) ORDER BY c.relname, k.conname)
    FROM pg_constraint k
    JOIN pg_class c ON c.oid = k.conrelid
    WHERE c.relnamespace = n.oid AND c.relkind IN ('r', 'p') AND k.contype IN ('p', 'u', 'f', 'c', 'x')), '[]'),
  'sequences', COALESCE((
    SELECT json_agg(json_build_object(
             'name',     q.relname,
             'type',     format_type(s.seqtypid, NULL),
             'owned_by', (SELECT t.relname || '.' || a.attname
                          FROM pg_depend dep
                          JOIN pg_class t ON t.oid = dep.refobjid
                          JOIN pg_attribute a ON a.attrelid = dep.refobjid AND a.attnum = dep.refobjsubid
                          WHERE dep.classid = 'pg_class'::regclass AND dep.objid = q.oid
                            AND dep.refclassid = 'pg_class'::regclass AND dep.deptype IN ('a', 'i')
                          LIMIT 1)
           ) ORDER BY q.relname)
    FROM pg_sequence s
    JOIN pg_class q ON q.oid = s.seqrelid
    WHERE q.relnamespace = n.oid), '[]')
) AS snapshot
FROM pg_namespace n
WHERE n.nspname = current_schema();
"""


def catalog_read(server: ShadowServer, dbname: str) -> dict[str, Any]:
    """The catalog query's output on `dbname`, read as the admin connection (never a job role,
    whose clone it would be: the admin only reads the catalog there)."""
    with server.admin_connect(dbname) as conn:
        row = conn.execute(CATALOG_QUERY).fetchone()
    assert row is not None
    return dict(row[0])


def template_catalog(server: ShadowServer, *, template: str, name: str) -> dict[str, Any]:
    """The catalog of a template, read on a clone `name` of it that is dropped afterwards.

    Templates accept no connections (a stray session would make every clone fail), so the
    query runs on a fresh clone, which has the same catalog.
    """
    provision.clone_create(server, template=template, name=name)
    try:
        return catalog_read(server, name)
    finally:
        provision.clone_drop(server, name)

-- The hub's database and its two roles, least privilege (docs/OPERATIONS.md, "PostgreSQL").
--
--   psql -v owner=globe_owner -v app=globe_hub -v db=globe -f roles.sql   (as a superuser)
--
-- globe_owner owns the schema and runs the migrations (globe-hub init, globe-hub migrate
-- --database-url postgresql+asyncpg://globe_owner@.../globe); globe_hub is what the hub
-- workers log in as: read and write rows, nothing else (no DDL, no TRUNCATE, no other
-- database).  A stolen hub.toml then cannot drop or alter the tables.  Give each role a
-- password afterwards (\password globe_hub) or use peer/cert authentication in
-- pg_hba.conf.  Safe to run again (for example for a restore into a new database).
-- Tested by tests/deploy/test_postgres.py.
\set ON_ERROR_STOP on
\if :{?owner}
\else
  \set owner globe_owner
\endif
\if :{?app}
\else
  \set app globe_hub
\endif
\if :{?db}
\else
  \set db globe
\endif

SELECT format('CREATE ROLE %I LOGIN', :'owner')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'owner') \gexec
SELECT format('CREATE ROLE %I LOGIN', :'app')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app') \gexec
SELECT format('CREATE DATABASE %I OWNER %I ENCODING %L TEMPLATE template0', :'db', :'owner', 'UTF8')
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec

REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"db" TO :"app";

\connect :"db"
ALTER SCHEMA public OWNER TO :"owner";
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO :"app";
-- Tables and sequences the owner creates from now on (every migration) ...
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
  GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"app";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
  GRANT USAGE, SELECT ON SEQUENCES TO :"app";
-- ... and those that exist already.
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :"app";
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO :"app";

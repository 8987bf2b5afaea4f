#!/bin/sh
# Restore a hub backup made by backup.sh into a NEW database and a NEW hub directory.
#
#   restore.sh BACKUP TARGET_DIR        (PG* variables name the target database)
#
# The target database must exist and be empty, prepared by roles.sql (-v db=NAME) so
# that the service role gets its rights; connect as the owner role (PGUSER=globe_owner).
# TARGET_DIR must not exist.  Checksums are verified first; the restore is one
# transaction (all or nothing).  Then point TARGET_DIR/hub.toml's database_url at the
# restored database if its name changed, run 'globe-hub check --dir TARGET_DIR', and
# start the hub: it verifies the whole restored log before it serves.
set -eu
[ $# -eq 2 ] || { echo "usage: restore.sh BACKUP TARGET_DIR" >&2; exit 2; }
backup=$1
target=$2
: "${PGDATABASE:?set PGDATABASE (the new, empty database)}"
[ -e "$target" ] && { echo "restore.sh: $target exists; restore into a new directory" >&2; exit 1; }
(cd "$backup" && sha256sum --check --quiet SHA256SUMS) || {
    echo "restore.sh: $backup does not match its checksums" >&2; exit 1; }
tables=$(psql -XAtc "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
[ "$tables" = 0 ] || { echo "restore.sh: database $PGDATABASE is not empty" >&2; exit 1; }
umask 077
pg_restore --no-owner --no-privileges --exit-on-error --single-transaction \
    --dbname="$PGDATABASE" "$backup/database.dump"
mkdir -m 0700 "$target"
tar -C "$target" -xzf "$backup/hub-dir.tar.gz"
echo "restored $PGDATABASE and $target"

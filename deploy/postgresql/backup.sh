#!/bin/sh
# A logical backup of the hub: pg_dump of its database (custom format) and an archive of
# the hub directory (hub.key sealed, hub.pub, hub.toml, genesis.json, blobs/), with a
# checksum file, written under GLOBE_BACKUP_DIR as hub-<UTC time>/ (mode 0700).
#
#   GLOBE_BACKUP_DIR=/var/backups/globe-hub GLOBE_HUB_DIR=/var/lib/globe-hub \
#   PGDATABASE=globe PGUSER=globe_owner deploy/postgresql/backup.sh
#
# The connection comes from libpq's PG* variables (PGHOST, PGPORT, PGUSER, PGDATABASE,
# PGPASSFILE).  Safe while the hub runs: pg_dump reads one consistent snapshot.  Backups
# older than GLOBE_BACKUP_KEEP_DAYS (30) are removed.  Prints the backup's path.
# Restore with restore.sh; the drill is tests/deploy/test_postgres.py.
set -eu
: "${GLOBE_BACKUP_DIR:?set GLOBE_BACKUP_DIR}" "${GLOBE_HUB_DIR:?set GLOBE_HUB_DIR}"
: "${PGDATABASE:?set PGDATABASE}"
umask 077
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out="$GLOBE_BACKUP_DIR/hub-$stamp"
work="$out.partial"
trap 'rm -rf "$work"' EXIT
mkdir -p "$GLOBE_BACKUP_DIR"
mkdir "$work"
pg_dump --format=custom --no-owner --no-privileges --file="$work/database.dump"
# The SQLite files (if any) are not part of a PostgreSQL hub; hub.db never goes in here.
tar -C "$GLOBE_HUB_DIR" --exclude='./hub.db' --exclude='./hub.db-*' -czf "$work/hub-dir.tar.gz" .
(cd "$work" && sha256sum database.dump hub-dir.tar.gz > SHA256SUMS)
mv "$work" "$out"
trap - EXIT
find "$GLOBE_BACKUP_DIR" -mindepth 1 -maxdepth 1 -type d -name 'hub-*' \
    -mtime +"${GLOBE_BACKUP_KEEP_DAYS:-30}" -exec rm -rf {} +
echo "$out"

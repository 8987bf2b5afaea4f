#!/bin/sh
# One-shot set-up of the compose network (an evaluation network, not a production one):
# passphrases, the hub directory on PostgreSQL, a one-admin genesis ceremony, and an
# initialised node.  Does nothing when run again.  Production: docs/OPERATIONS.md.
set -eu
umask 077
creds=/run/globe-credentials
hub=/var/lib/globe-hub
node=/var/lib/globe-node
admin=/var/lib/globe-admin
[ -f "$node/node.toml" ] && { echo "bootstrap: already done"; exit 0; }
for name in hub node admin; do
    [ -f "$creds/$name-passphrase" ] || head -c 24 /dev/urandom | base64 > "$creds/$name-passphrase"
done
owner_url=postgresql+asyncpg://globe_owner@postgres/globe
globe-hub init --dir "$hub" --database-url "$owner_url" --host 0.0.0.0 --port 8441 \
    --passphrase-file "$creds/hub-passphrase"
public=$(globe-admin --json keygen --out "$admin/evaluator.key" \
    --passphrase-file "$creds/admin-passphrase" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["public_key"])')
globe-admin genesis --network-id globe-compose --name "GlobE Link (compose)" \
    --admin "evaluator=$public" \
    --threshold 1 --hub-url http://proxy:8080 --hub-key "$hub/hub.pub" \
    --out "$admin/genesis.json" --sign "$admin/evaluator.key" \
    --passphrase-file "$creds/admin-passphrase"
globe-hub install-genesis --dir "$hub" "$admin/genesis.json"
# The workers log in as the service role, which may read and write rows only.
sed -i 's#^database_url = .*#database_url = "postgresql+asyncpg://globe_hub@postgres/globe"#' "$hub/hub.toml"
printf '\n' >> "$hub/hub.toml"
globe-node init --dir "$node" --genesis "$admin/genesis.json" --authority-id XX-EVAL \
    --name "Evaluation authority" --country XX --kind anti-corruption --language en \
    --contact "compose evaluation" --legal-basis "evaluation only" --api-port 8450 \
    --passphrase-file "$creds/node-passphrase"
echo "bootstrap: done"

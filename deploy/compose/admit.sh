#!/bin/sh
# One-shot: the compose node applies for membership and the evaluation admin approves it.
set -eu
creds=/run/globe-credentials
node=/var/lib/globe-node
admin=/var/lib/globe-admin
[ -f "$admin/admitted" ] && { echo "admit: already done"; exit 0; }
globe-node apply --dir "$node" --passphrase-file "$creds/node-passphrase"
globe-admin approve "$(cat "$node/application.id")" --genesis "$admin/genesis.json" \
    --key "$admin/evaluator.key" --passphrase-file "$creds/admin-passphrase"
touch "$admin/admitted"

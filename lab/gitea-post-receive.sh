#!/bin/sh
# A bare repository's post-receive hook that tells Flotilla about each pushed branch the way
# Gitea does: the push event's JSON, `X-Gitea-Event: push` and `X-Gitea-Signature` (hex
# HMAC-SHA256 of the body with the hook's secret). The lab's Git server has no Gitea in
# front of it; this stands in for one. Install as hooks/post-receive and set
#   git config flotilla.hookurl https://flotilla.example/api/v1/hooks/gitea/<id>
#   git config flotilla.hooksecret <the secret Flotilla showed once>
set -eu

url=$(git config --get flotilla.hookurl)
secret=$(git config --get flotilla.hooksecret)
pusher=${GIT_PUSHER:-${USER:-lab}}

while read -r old new ref; do
  body=$(printf '{"ref":"%s","before":"%s","after":"%s","pusher":{"login":"%s"}}' "$ref" "$old" "$new" "$pusher")
  signature=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$secret" -r | cut -d' ' -f1)
  curl -fsS -m 10 -o /dev/null -H 'Content-Type: application/json' -H 'X-Gitea-Event: push' \
    -H "X-Gitea-Signature: $signature" --data-binary "$body" "$url" ||
    echo "flotilla: the push hook to $url failed" >&2
done

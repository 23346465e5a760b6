#!/bin/sh
# Entry point of a simulated actor replica (docker-compose.yml, profile "sim"): claim one of the actor
# key directories made by the `keys` service (its name becomes the actor id) and run `actor` with it.
# A restarted container keeps its hostname and so reclaims its own key.
set -eu
KEYS=${KEYS:-/keys}
mkdir -p "$KEYS/claims"
for dir in "$KEYS"/actors/*/; do
  name=$(basename "$dir")
  if mkdir "$KEYS/claims/$name" 2>/dev/null || [ "$(cat "$KEYS/claims/$name/host" 2>/dev/null)" = "$(hostname)" ]; then
    hostname > "$KEYS/claims/$name/host"
    exec actor --keys "$dir" "$@"
  fi
done
echo "sim-actor: every key in $KEYS/actors is taken; run with a larger SIM_ACTORS" >&2
exit 1

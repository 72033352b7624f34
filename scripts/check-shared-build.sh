#!/usr/bin/env bash
# Checks that README's two commands, and the builds the tests start themselves, resolve every
# registry crate they share with the same features (workspace-hack/ exists for this): a crate built
# with other features is built twice, with everything that depends on it. Prints the differences;
# exits 1 if there are any. Needs no build: it compares `cargo tree` output.
set -euo pipefail
cd "$(dirname "$0")/.."

# One line per crate: "name vX.Y.Z [(path)] features".
tree() { cargo tree --locked -f '{p} {f}' --prefix none "$@" | sed 's/ (\*)$//' | sort -u; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

tree --workspace -e normal,build,dev >"$tmp/tests"       # cargo test --workspace
tree -p macemu -e normal,build,dev >"$tmp/example"       # cargo run --example stream
tree -p macemu-cli -e normal,build >"$tmp/cli"            # e2e tests: cargo build -p macemu-cli
tree -p macemu-capi -p macemu-cli -e normal,build >"$tmp/capi" # c_abi test: the static library

status=0
for sel in example cli capi; do
    # A crate of this selection with features the tests' build does not have.
    if extra=$(comm -23 "$tmp/$sel" "$tmp/tests") && [ -n "$extra" ]; then
        echo "$sel: built with features the workspace's tests do not use:"
        sed 's/^/  /' <<<"$extra"
        status=1
    fi
done
[ $status = 0 ] && echo "example, cli and capi builds resolve the same features as cargo test --workspace"
exit $status

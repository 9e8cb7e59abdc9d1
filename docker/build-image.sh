#!/usr/bin/env bash
# Builds warren's Docker image without pulling anything: a statically linked release binary
# (glibc's static libc; `+crt-static` on the host's own target, so no musl toolchain is
# needed) copied into an image FROM scratch.
#
#   docker/build-image.sh [TAG]      TAG defaults to warren:latest
#
# The cargo build goes to $CARGO_TARGET_DIR (else ./target) under the target triple, apart
# from the normal builds; RUSTFLAGS apply to that target only (with an explicit --target,
# build scripts and proc-macros are built without them), and reruns reuse it.
set -euo pipefail
tag=${1:-warren:latest}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target_dir=${CARGO_TARGET_DIR:-$root/target}
triple=$(rustc -vV | sed -n 's/^host: //p')
case "$triple" in
    *-linux-gnu) ;;
    *) echo "build-image: host target $triple is not a glibc Linux target" >&2; exit 1 ;;
esac

echo "== static release build of warren for $triple"
RUSTFLAGS='-C target-feature=+crt-static' \
    cargo build --locked --release --target "$triple" -p warren
bin=$target_dir/$triple/release/warren

# A dynamically linked binary would fail in the image with a bare "no such file or
# directory" (there is no loader in it): refuse it here instead.
if ! file "$bin" | grep -q 'statically linked\|static-pie linked'; then
    echo "build-image: $bin is not statically linked:" >&2
    file "$bin" >&2
    exit 1
fi

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
# Without its debug information (line tables for backtraces stay in the cargo artifact).
if command -v strip >/dev/null; then
    strip --strip-debug -o "$context/warren" "$bin"
else
    cp "$bin" "$context/warren"
fi
cp docker/Dockerfile "$context/Dockerfile"
echo "== docker build -t $tag ($(du -h "$context/warren" | cut -f1) binary, FROM scratch)"
previous=$(docker image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
docker build --tag "$tag" "$context"
# The image this tag named before is left untagged: remove it unless something still uses it.
current=$(docker image inspect --format '{{.Id}}' "$tag")
if [ -n "$previous" ] && [ "$previous" != "$current" ]; then
    docker image rm "$previous" >/dev/null 2>&1 || true
fi
docker image inspect --format '{{.Id}} {{.Size}} bytes' "$tag"

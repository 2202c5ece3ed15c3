#!/usr/bin/env bash
# Builds SeaweedFS's weed binary for the object-storage tests (issue 17),
# once: the binary is cached outside the repository and reused while it
# exists. Prints the binary's path on its last line. With --check it only
# prints the path of a binary already built, or fails.
#
# `go install ...@version` refuses the module (it has a replace directive),
# so the build runs inside a writable copy of the downloaded module. A cold
# build takes about 5 minutes and 2.6 GB of memory.
set -euo pipefail
version="v0.0.0-20261109003541-7506e5f91cd6"
cache="${SNAPDECK_WEED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/snapdeck-weed}"
bin="$cache/weed-$version"
if [ -x "$bin" ]; then
	echo "$bin"
	exit 0
fi
if [ "${1:-}" = "--check" ]; then
	echo "weed.sh: no weed binary at $bin yet" >&2
	exit 1
fi
mkdir -p "$cache"
dir=$(cd "$cache" && go mod download -json "github.com/seaweedfs/seaweedfs@$version" |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
if [ -z "$dir" ] || [ ! -d "$dir" ]; then
	echo "weed.sh: go mod download of seaweedfs@$version gave no module directory" >&2
	exit 1
fi
src="$cache/src"
rm -rf "$src"
cp -r "$dir" "$src"
chmod -R u+w "$src"
(cd "$src" && GOFLAGS=-mod=mod go build -o "$bin.partial" ./weed)
mv "$bin.partial" "$bin"
rm -rf "$src"
echo "$bin"

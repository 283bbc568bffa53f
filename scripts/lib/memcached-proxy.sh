# memcached's built-in proxy (memcached >= 1.6.13 built with --enable-proxy),
# from Debian 13 (trixie)'s source package: Debian 12's memcached is built
# without the proxy, and a git checkout of memcached downloads its vendored
# Lua from outside. Source it after lib.sh.
#
#   ensure_memcached_proxy   builds it once (cached), sets $memcached_proxy
#
# The build is cached in $SEGCORE_TOOLS (default ~/.cache/segcore), outside
# the checkout, so a clean clone (CI) finds it again. The source package
# version is pinned; if the archive no longer has it, the newest one its
# index offers is taken and said.
#
# One fix is applied before building (found here, under load): a backend
# response's value and line pointers are left pointing into the backend's
# read buffer after the response is copied out, and that buffer is shifted
# as soon as the next response is read, so `mcp.request(line, res)` (a
# value copied from a response) and `res:line()` could read another
# response's bytes. The fix points both into the copy.

MEMCACHED_PROXY_VERSION=${MEMCACHED_PROXY_VERSION:-1.6.38-1}

ensure_memcached_proxy() {
  local tools=${SEGCORE_TOOLS:-$HOME/.cache/segcore}
  local root="$tools/memcached-proxy-$MEMCACHED_PROXY_VERSION-fix1"
  memcached_proxy="$root/memcached"
  if [ -x "$memcached_proxy" ] && "$memcached_proxy" -h 2>/dev/null | grep -q proxy_config; then
    return 0
  fi
  echo "building memcached $MEMCACHED_PROXY_VERSION with --enable-proxy into $root" >&2
  # Build tools and libevent; dpkg-dev unpacks the source package.
  local need=()
  command -v dpkg-source >/dev/null || need+=(dpkg-dev)
  command -v gcc >/dev/null || need+=(gcc)
  command -v make >/dev/null || need+=(make)
  command -v pkg-config >/dev/null || need+=(pkg-config)
  dpkg -s libevent-dev >/dev/null 2>&1 || need+=(libevent-dev)
  dpkg -s libssl-dev >/dev/null 2>&1 || need+=(libssl-dev)
  if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  local work
  work=$(mktemp -d /tmp/memcached-proxy-build.XXXXXX)
  # A private apt state with a trixie deb-src entry: the system's sources
  # are not touched.
  mkdir -p "$work/apt/sources" "$work/apt/lists/partial" "$work/apt/cache/archives/partial"
  cat >"$work/apt/sources/trixie-src.sources" <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  local apt=(-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$work/apt/sources"
    -o Dir::State::Lists="$work/apt/lists" -o Dir::Cache="$work/apt/cache")
  apt-get "${apt[@]}" -o APT::Sandbox::User=root update -qq >/dev/null 2>&1
  local version=$MEMCACHED_PROXY_VERSION
  if ! apt-cache "${apt[@]}" showsrc memcached | grep -q "^Version: $version\$"; then
    version=$(apt-cache "${apt[@]}" showsrc memcached | awk '/^Version:/ {print $2}' | sort -V | tail -1)
    echo "memcached $MEMCACHED_PROXY_VERSION left the archive; building $version instead" >&2
  fi
  (cd "$work" && apt-get "${apt[@]}" source --download-only -qq "memcached=$version" >/dev/null 2>&1 &&
    dpkg-source -x --no-check ./memcached_"$version".dsc src >/dev/null)
  python3 - "$work/src/proxy_network.c" <<'PY'
import re, sys
path = sys.argv[1]
src = open(path).read()
copy = re.compile(r"(memcpy\(r->buf, be->rbuf, r->resp\.reslen ?\+ ?r->resp\.vlen_read\);)")
fix = (r"\1\n                if (r->resp.rline) r->resp.rline = r->buf + (r->resp.rline - be->rbuf);"
       r"\n                if (r->resp.value) r->resp.value = r->buf + (r->resp.value - be->rbuf);")
fixed, n = copy.subn(fix, src)
if n != 2:
    sys.exit("proxy_network.c: expected 2 response copies to fix, found %d" % n)
open(path, "w").write(fixed)
PY
  # A plain `make memcached` fails to link before the vendored Lua and
  # mcmc are built.
  (cd "$work/src" && ./configure -q --enable-proxy --enable-tls >/dev/null &&
    make -s -C vendor >/dev/null 2>&1 && make -s -j2 memcached >/dev/null 2>&1)
  mkdir -p "$root"
  cp "$work/src/memcached" "$root/memcached.new"
  mv "$root/memcached.new" "$memcached_proxy"
  echo "$version" >"$root/VERSION"
  rm -rf "$work"
  "$memcached_proxy" -h | grep -q proxy_config
}

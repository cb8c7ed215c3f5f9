#!/bin/sh
# Render the ACL template (users.acl) into the file Redis loads:  render-acl.sh TEMPLATE OUT
#
# - Each user's `#@GUIDEPOST_<ROLE>_REDIS_PASSWORD_SHA256@` becomes the SHA-256 (hex) of the
#   environment variable GUIDEPOST_<ROLE>_REDIS_PASSWORD; the plain password is never written.
#   A role whose variable is unset or empty is rendered `off` (nobody can log in as it); a
#   placeholder value from .env.example (`replace-with-...`) is refused.
# - `~guidepost:` key patterns follow GUIDEPOST_NAMESPACE (default guidepost).
# - Rules the server does not know are dropped: `+client|setinfo` exists from Redis 7.2 on, and
#   Redis 7.0/7.1 refuse a file that names it. The version is REDIS_SERVER_VERSION (e.g. 7.0)
#   if set, else what `${REDIS_SERVER:-redis-server} --version` reports. Valkey speaks 7.2's.
# POSIX sh and coreutils only: it runs in the stock redis image's entrypoint.
set -eu

if [ "$#" -ne 2 ]; then
    echo "usage: render-acl.sh TEMPLATE OUT" >&2
    exit 64
fi
template=$1
out=$2
fail() {
    echo "render-acl: $*" >&2
    exit 1
}

namespace=${GUIDEPOST_NAMESPACE:-guidepost}
case $namespace in
    *[!A-Za-z0-9_.-]*) fail "GUIDEPOST_NAMESPACE may hold only letters, digits and _ . -" ;;
esac

version=${REDIS_SERVER_VERSION:-$("${REDIS_SERVER:-redis-server}" --version | sed -n 's/.* v=\([0-9][0-9]*\.[0-9][0-9]*\).*/\1/p')}
major=${version%%.*}
minor=${version#*.}
minor=${minor%%.*}
case "$major.$minor" in
    *[!0-9.]* | .* | *.) fail "cannot tell the server's version (got '$version'); set REDIS_SERVER_VERSION" ;;
esac
if [ "$major" -lt 7 ]; then
    fail "the ACL needs Redis 7.0 or later (read/write key permissions); the server is $version"
fi

umask 077
work=$(mktemp)
trap 'rm -f "$work"' EXIT
sed "s/~guidepost:/~$namespace:/g" "$template" > "$work"
if [ "$major" -eq 7 ] && [ "$minor" -lt 2 ]; then
    sed -i 's/ +client|setinfo//g' "$work"
fi

for placeholder in $(grep -o '#@GUIDEPOST_[A-Z]*_REDIS_PASSWORD_SHA256@' "$template" | sort -u); do
    variable=${placeholder#\#@}
    variable=${variable%_SHA256@}
    eval "password=\${$variable:-}"
    case $password in
        "")
            echo "render-acl: $variable is not set: its user is off" >&2
            sed -i "/$placeholder/{s/ on / off /;s/ $placeholder//}" "$work"
            ;;
        replace-with-*)
            fail "$variable still holds the placeholder from .env.example: set a real password"
            ;;
        *)
            hash=$(printf '%s' "$password" | sha256sum | cut -d ' ' -f 1)
            sed -i "s/$placeholder/#$hash/" "$work"
            ;;
    esac
done

if grep -q '#@' "$work"; then
    fail "unrendered placeholder left in $template"
fi
cat "$work" > "$out"

# Sourced by check.sh and gpu_build.sh: the firmware runtime's build dependencies. nlohmann/json and OpenSSL's
# headers are required (apt-get install as root where missing; otherwise `skip` with the reason), libpng is optional
# (gedge-score reads raw frames without it), valijson's headers are unpacked from Debian's libvalijson-dev into
# build/firmware/deps (its package dependencies are for other JSON adapters and are not installed).
# Needs BUILD (build/firmware), and skip() and say() from the sourcing script.
have_nlohmann() { [ -f /usr/include/nlohmann/json.hpp ] || [ -f /usr/local/include/nlohmann/json.hpp ]; }
APT_UPDATED=0
apt_install() {  # apt_install PACKAGE...: as root only; 0 when installed
    [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1 || return 1
    if [ "$APT_UPDATED" = "0" ]; then
        apt-get update -qq >/dev/null 2>&1 || true
        APT_UPDATED=1
    fi
    say "installing $* (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1
}
firmware_deps() {  # sets VALIJSON_INCLUDE and VALIJSON_NOTE; skips (exit 0) when a required package is missing
    if ! have_nlohmann; then
        apt_install nlohmann-json3-dev && have_nlohmann ||
            skip "nlohmann/json is not installed and cannot be installed here (as root: apt-get install nlohmann-json3-dev)"
    fi
    if [ ! -f /usr/include/openssl/evp.h ]; then
        apt_install libssl-dev && [ -f /usr/include/openssl/evp.h ] ||
            skip "OpenSSL headers are not installed and cannot be installed here (as root: apt-get install libssl-dev)"
    fi
    if [ ! -f /usr/include/png.h ]; then
        apt_install libpng-dev || say "no libpng headers: gedge-score is built for raw frames only"
    fi

    # valijson (header-only; only its nlohmann adapter is used)
    VALIJSON_NOTE=""
    VALIJSON_INCLUDE=""
    if [ -f /usr/include/valijson/validator.hpp ]; then
        VALIJSON_INCLUDE=/usr/include
        VALIJSON_NOTE="valijson (system package)"
    elif [ -f "$BUILD/deps/valijson/usr/include/valijson/validator.hpp" ]; then
        VALIJSON_INCLUDE="$BUILD/deps/valijson/usr/include"
        VALIJSON_NOTE="valijson (Debian libvalijson-dev, headers unpacked in build/firmware/deps)"
    elif command -v apt-get >/dev/null 2>&1 && command -v dpkg-deb >/dev/null 2>&1; then
        mkdir -p "$BUILD/deps"
        fetch() { (cd "$BUILD/deps" && apt-get download libvalijson-dev >/dev/null 2>&1); }
        if ! fetch && [ "$(id -u)" = "0" ] && [ "$APT_UPDATED" = "0" ]; then
            apt-get update -qq >/dev/null 2>&1 || true
            APT_UPDATED=1
            fetch
        fi
        deb="$(ls "$BUILD"/deps/libvalijson-dev_*.deb 2>/dev/null | head -n 1)"
        if [ -n "$deb" ] && dpkg-deb -x "$deb" "$BUILD/deps/valijson"; then
            VALIJSON_INCLUDE="$BUILD/deps/valijson/usr/include"
            VALIJSON_NOTE="valijson (Debian libvalijson-dev, headers unpacked in build/firmware/deps)"
        fi
    fi
    [ -n "$VALIJSON_NOTE" ] ||
        VALIJSON_NOTE="OFF: valijson could not be fetched; typed checks of the fields the runtime uses only"
}

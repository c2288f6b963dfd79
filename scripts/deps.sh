# Sourced by run.sh and test.sh: makes sure the system packages the build
# needs are present, installing them with apt-get when running as root, and
# otherwise stopping with the list of what is missing.
#
# Build needs: a C/C++ compiler and libclang (rocksdb's bindings are
# generated with bindgen). protoc is vendored, nothing to install.
# With TIDEMARK_INSTALL_PEERS=1 (CI sets it) it also installs the real peers
# the tests run against: prometheus + promtool, node_exporter, pushgateway,
# victoria-metrics. Tests that need a peer skip, saying so, when it is absent.

# libclang itself (libclang.so / libclang-NN.so), not libclang-cpp, which
# some images carry without it and which bindgen cannot use.
have_libclang() {
    local f
    for f in /usr/lib/llvm-*/lib/libclang.so* /usr/lib/llvm-*/lib/libclang-[0-9]*.so* \
        /usr/lib/x86_64-linux-gnu/libclang.so* /usr/lib/x86_64-linux-gnu/libclang-[0-9]*.so*; do
        [ -e "$f" ] && return 0
    done
    return 1
}

missing=()
command -v cc >/dev/null 2>&1 || missing+=(gcc)
command -v c++ >/dev/null 2>&1 || missing+=(g++)
have_libclang || missing+=(libclang-dev)
if [ "${TIDEMARK_INSTALL_PEERS:-0}" = 1 ]; then
    command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
    command -v prometheus-node-exporter >/dev/null 2>&1 || missing+=(prometheus-node-exporter)
    command -v prometheus-pushgateway >/dev/null 2>&1 || missing+=(prometheus-pushgateway)
    command -v victoria-metrics >/dev/null 2>&1 || missing+=(victoria-metrics)
fi

if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing system packages: ${missing[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
    else
        echo "tidemark needs these system packages: ${missing[*]}" >&2
        echo "install them (Debian/Ubuntu: sudo apt-get install ${missing[*]}) and run again" >&2
        exit 1
    fi
fi

# Shared by the benchmarks: a release build of warden, a work directory removed on exit, local registries.
# Source it after `cd` to the repository root, with BENCH_TOOLS naming the commands the benchmark needs; sets WARDEN
# (the shipped command), WARDEN_DEV (the development tools: testdata, test-proxy, bench-*) and WORK.

for tool in ${BENCH_TOOLS:-}; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is missing (run scripts/test.sh first)" >&2; exit 1; }
done

# The shipped build (README: "Building the shipped binary"): static Swift runtime, stripped.
echo "Building warden and warden-dev (release)..."
swift build -c release --static-swift-stdlib -Xlinker -s --product warden >/dev/null
swift build -c release --static-swift-stdlib -Xlinker -s --product warden-dev >/dev/null
WARDEN="$(swift build -c release --static-swift-stdlib --show-bin-path)/warden"
WARDEN_DEV="$(swift build -c release --static-swift-stdlib --show-bin-path)/warden-dev"

WORK=$(mktemp -d /tmp/warden-bench.XXXXXX)
# Registry PIDs go to a file: start_registry runs in a command substitution (a subshell).
cleanup() {
    if [ -f "$WORK/pids" ]; then
        while read -r p; do kill -9 "$p" 2>/dev/null || true; done <"$WORK/pids"
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# start_registry NAME -> prints host:port
start_registry() {
    local name=$1 port
    port=$(free_port)
    mkdir -p "$WORK/$name"
    cat >"$WORK/$name/config.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/$name/data
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
YAML
    docker-registry serve "$WORK/$name/config.yml" >"$WORK/$name/log" 2>&1 &
    echo $! >>"$WORK/pids"
    for _ in $(seq 100); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null && break
        sleep 0.1
    done
    echo "127.0.0.1:$port"
}


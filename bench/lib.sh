# Shared by the benchmarks: a release build of warden, a work directory removed on exit, local registries.
# Source it after `cd` to the repository root, with BENCH_TOOLS naming the commands the benchmark needs; sets WARDEN
# (the shipped command), WARDEN_DEV (the development tools: testdata, test-proxy, bench-*) and WORK.

# wrk is installed on demand (apt); every other tool comes from scripts/test.sh.
case " ${BENCH_TOOLS:-} " in *" wrk "*)
    if ! command -v wrk >/dev/null; then
        SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
        echo "Installing wrk (apt)..."
        $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >/dev/null
    fi ;;
esac
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

# start_registry NAME -> prints host:port; $REGISTRY_EXTRA (YAML) is appended to its configuration
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
${REGISTRY_EXTRA:-}
YAML
    docker-registry serve "$WORK/$name/config.yml" >"$WORK/$name/log" 2>&1 &
    echo $! >>"$WORK/pids"
    for _ in $(seq 100); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null && break
        sleep 0.1
    done
    echo "127.0.0.1:$port"
}

# start_server NAME STATE [FLAG...]: `warden serve` with the configuration $SERVE_CONFIG (default $WORK/serve.yml);
# sets PID and BASE (and TOKEN when the server printed one).
start_server() {
    local name=$1 state=$2
    shift 2
    "$WARDEN" serve --listen 127.0.0.1:0 --state "$state" --config "${SERVE_CONFIG:-$WORK/serve.yml}" "$@" >"$WORK/$name.out" 2>"$WORK/$name.log" &
    PID=$!
    echo "$PID" >>"$WORK/pids"
    for _ in $(seq 600); do
        grep -q '^listening on ' "$WORK/$name.out" && break
        kill -0 "$PID" 2>/dev/null || { echo "serve: the server ($name) exited:" >&2; tail -5 "$WORK/$name.log" >&2; exit 1; }
        sleep 0.1
    done
    BASE=$(sed -n 's/^listening on //p' "$WORK/$name.out")
    [ -n "$BASE" ] || { echo "serve: the server ($name) did not start listening" >&2; exit 1; }
    if grep -q '^admin token' "$WORK/$name.out"; then TOKEN=$(sed -n 's/^admin token.*: \(wdn_[^ ]*\)$/\1/p' "$WORK/$name.out"); fi
}
# Graceful stop (SIGTERM: in-flight requests finish, the last audit checkpoint is signed); SIGKILL after 30 s.
stop_server() {
    kill -TERM "$PID"
    (
        trap 'kill "$nap" 2>/dev/null; exit 0' TERM
        sleep 30 &
        nap=$!
        wait "$nap" && kill -9 "$PID" 2>/dev/null
    ) &
    local watchdog=$!
    wait "$PID" || true
    kill "$watchdog" 2>/dev/null || true
    wait "$watchdog" 2>/dev/null || true
    sed -i "/^$PID\$/d" "$WORK/pids"
}

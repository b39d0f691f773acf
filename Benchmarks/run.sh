#!/usr/bin/env bash
# The pmsd load benchmark: pmsd against nginx, Node.js, uvicorn and a bare
# libuv + llhttp C loop, all serving the same bytes on loopback, driven by wrk.
#
#   Benchmarks/run.sh [--quick] [--rounds N] [--duration SECONDS] [--pmsd BINARY]
#
#   --quick           1 round of 3 s per workload instead of 3 rounds of 10 s
#   --rounds N        rounds per workload and server
#   --duration S      seconds per wrk run
#   --pmsd BINARY     measure this pmsd binary instead of building one
#
# Run as root on Debian 12 with two or more cores. The first run installs the
# Debian packages it needs and a Python environment in .build/bench-venv;
# later runs reuse them. Every server runs pinned to CPU 0 and wrk to CPU 1.
# The table goes to standard output, progress to standard error, and the
# results replace the files in Benchmarks/results/. Every server the script
# starts listens on 127.0.0.1 only and is stopped when it exits.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
here="$root/Benchmarks"
work="$root/.build/bench-work"
venv="$root/.build/bench-venv"
results="$here/results"

rounds=3
duration=10
warmup=2
mode=full
pmsd_binary=""
while [ "$#" -gt 0 ]; do
    case "$1" in
        --quick) mode=quick; rounds=1; duration=3; warmup=1 ;;
        --rounds) rounds=${2:?--rounds needs a number}; shift ;;
        --duration) duration=${2:?--duration needs a number of seconds}; shift ;;
        --pmsd) pmsd_binary=${2:?--pmsd needs a path}; shift ;;
        -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench: unknown option $1 (see --help)" >&2; exit 64 ;;
    esac
    shift
done
case "$rounds$duration" in
    *[!0-9]*) echo "bench: --rounds and --duration take whole numbers" >&2; exit 64 ;;
esac
if [ "$rounds" -lt 1 ] || [ "$duration" -lt 1 ]; then
    echo "bench: --rounds and --duration must be at least 1" >&2
    exit 64
fi

SERVER_CPU=0
CLIENT_CPU=1
SERVERS=(pmsd nginx node uvicorn bare)
SWEEP_CONNECTIONS=(1 4 16 64 256 1024)
IDLE_CONNECTIONS=10000
TOKENS_TO_MINT=1000000

log() { echo "bench: $*" >&2; }
fail() { echo "bench: $*" >&2; exit 1; }

if [ "$(nproc)" -lt 2 ]; then
    fail "needs two cores, one for the servers and one for wrk; this machine has $(nproc)"
fi
if [ "$(id -u)" != 0 ]; then
    fail "run as root: the set-up installs Debian packages"
fi

# ---------------------------------------------------------------- set-up

"$root/scripts/setup.sh"

apt_packages=(wrk nginx-light nodejs python3-venv gcc valgrind util-linux time curl libuv1-dev pkg-config)
missing=()
for pkg in "${apt_packages[@]}"; do
    # A nodejs from another Debian repository satisfies nodejs, and any
    # nginx flavour satisfies nginx-light.
    case "$pkg" in
        nodejs) command -v node >/dev/null && continue ;;
        nginx-light) command -v nginx >/dev/null && continue ;;
    esac
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The Python environment is built with Debian's python3, which python3-venv
# belongs to. A stamp records the requirements and interpreter it was built
# from.
python=/usr/bin/python3
requirements="$here/requirements.txt"
wanted_stamp="$(sha256sum "$requirements" | cut -d' ' -f1) $("$python" -c 'import sys; print(sys.version.split()[0])')"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.bench-stamp" 2>/dev/null)" != "$wanted_stamp" ]; then
    log "creating the Python environment in $venv"
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    if ! "$python" -m venv "$venv" \
        || ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
            --requirement "$requirements"; then
        rm -rf "$venv"
        fail "creating the Python environment failed"
    fi
    echo "$wanted_stamp" > "$venv/.bench-stamp"
fi

mkdir -p "$work"
if [ -z "$pmsd_binary" ]; then
    log "building pmsd (release)"
    (cd "$root" && swift build -c release --product pmsd) >&2
    pmsd_binary="$root/.build/release/pmsd"
    if [ -n "$(cd "$root" && git status --porcelain -- Sources CSources Package.swift 2>/dev/null)" ]; then
        pmsd_source="built from commit $(cd "$root" && git rev-parse --short HEAD) with uncommitted changes in Sources/, CSources/ or Package.swift"
    else
        pmsd_source="built from commit $(cd "$root" && git rev-parse --short HEAD)"
    fi
else
    [ -x "$pmsd_binary" ] || fail "$pmsd_binary is not an executable"
    pmsd_binary=$(cd "$(dirname "$pmsd_binary")" && pwd)/$(basename "$pmsd_binary")
    pmsd_source="prebuilt binary $pmsd_binary"
fi

log "building the bare C loop"
llhttp="$root/CSources/CLLHTTP"
bare_build="$work/bare-build"
mkdir -p "$bare_build"
read -r -a uv_flags <<<"$(pkg-config --cflags --libs libuv)"
for source in api http llhttp; do
    gcc -O2 -std=gnu11 -I"$llhttp/include" -c "$llhttp/upstream/$source.c" -o "$bare_build/llhttp-$source.o"
done
gcc -O2 -std=gnu11 -Wall -Wextra -Werror -I"$llhttp/include" -c "$here/bare-loop/bare.c" -o "$bare_build/bare.o"
gcc -o "$bare_build/bare" "$bare_build/bare.o" "$bare_build"/llhttp-*.o "${uv_flags[@]}"

# 10 000 idle connections and wrk's 1 024 need more file descriptors than the
# usual limit of 1 024. Servers, wrk and the idle client inherit this limit.
want_files=$((IDLE_CONNECTIONS + 2048))
if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt "$want_files" ]; then
    ulimit -Hn "$want_files" 2>/dev/null || true
fi
ulimit -n "$want_files" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want_files" ]; then
    fail "cannot raise the open file limit to $want_files (it is $(ulimit -n))"
fi

# ---------------------------------------------------------------- servers

run_dir="$work/run"
rm -rf "$run_dir"
mkdir -p "$run_dir/logs" "$run_dir/results"
out="$run_dir/results"

# Every pmsd of this run starts from one copy, so a rebuild of .build/release
# meanwhile does not mix two builds in one run.
mkdir -p "$run_dir/bin"
cp "$pmsd_binary" "$run_dir/bin/pmsd"
pmsd_binary="$run_dir/bin/pmsd"

started_pids=()
cleanup() {
    local pid
    for pid in "${started_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${started_pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_http NAME PID URL: waits up to 20 s for URL to return a 2xx status.
wait_http() {
    local name=$1 pid=$2 url=$3 i
    for i in $(seq 1 200); do
        if ! kill -0 "$pid" 2>/dev/null; then
            fail "$name exited at start; see $run_dir/logs/$name.log"
        fi
        if curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    fail "$name did not respond to $url within 20 s; see $run_dir/logs/$name.log"
}

# forget_pid PID: drops a process that has ended from the clean-up list.
forget_pid() {
    local keep=() p
    for p in "${started_pids[@]}"; do
        if [ "$p" != "$1" ]; then
            keep+=("$p")
        fi
    done
    started_pids=("${keep[@]}")
}

# stop_server PID: stops one server this script started and waits for it.
stop_server() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    forget_pid "$1"
}

# cpu_ticks PID...: prints the user plus system CPU time of the processes,
# all their threads included, in clock ticks, from fields 14 and 15 of
# /proc/PID/stat. The fields are counted after the command name because the
# name may contain spaces. (/proc/PID/schedstat would be finer, but it reads
# as zeros whenever the kernel's schedstats and delay accounting are off.)
cpu_ticks() {
    local total=0 p ticks
    for p in "$@"; do
        ticks=$(sed 's/^.*) //' "/proc/$p/stat" | awk '{ print $12 + $13 }')
        total=$((total + ticks))
    done
    echo "$total"
}
clock_ticks=$(getconf CLK_TCK)

rss_bytes() {
    awk '$1 == "VmRSS:" { print $2 * 1024 }' "/proc/$1/status"
}

admin_token=$(od -An -N20 -tx1 /dev/urandom | tr -d ' \n')

# start_pmsd NAME PORT MAX_TOKENS: starts pmsd with its own state directory
# and sets started_pid.
start_pmsd() {
    local name=$1 port=$2 max_tokens=$3
    local dir="$run_dir/$name"
    mkdir -p "$dir"
    cat > "$dir/pmsd.json" <<EOF
{
  "friendlyName": "pmsd benchmark",
  "adminToken": "$admin_token",
  "maxTransientTokens": $max_tokens,
  "maxConnections": $((IDLE_CONNECTIONS + 1000)),
  "keepAliveTimeoutSeconds": 600
}
EOF
    chmod 600 "$dir/pmsd.json"
    taskset -c "$SERVER_CPU" "$pmsd_binary" --config "$dir/pmsd.json" --port "$port" \
        --bind 127.0.0.1 --state-dir "$dir/state" --log-level warning \
        >"$run_dir/logs/$name.log" 2>&1 &
    started_pid=$!
    started_pids+=("$started_pid")
    wait_http "$name" "$started_pid" "http://127.0.0.1:$port/identity"
}

declare -A port pid
port[pmsd]=$(free_port)
start_pmsd pmsd "${port[pmsd]}" 100000000
pid[pmsd]=$started_pid

# The bytes every contender serves are pmsd's own response bodies.
fetch() {
    local url=$1 name=$2
    shift 2
    curl -fsS --max-time 5 "$@" -D "$run_dir/$name.headers" -o "$run_dir/$name.body" "$url"
    tr -d '\r' < "$run_dir/$name.headers" \
        | awk 'tolower($1) == "content-type:" { sub(/^[^:]*: */, ""); print }' > "$run_dir/$name.type"
    [ -s "$run_dir/$name.type" ] || fail "pmsd's response to $url has no Content-Type"
}
fetch "http://127.0.0.1:${port[pmsd]}/identity" identity
fetch "http://127.0.0.1:${port[pmsd]}/" root -H "X-Plex-Token: $admin_token"
identity_type=$(cat "$run_dir/identity.type")
root_type=$(cat "$run_dir/root.type")

port[bare]=$(free_port)
taskset -c "$SERVER_CPU" "$bare_build/bare" "${port[bare]}" "$run_dir/identity.body" "$identity_type" \
    >"$run_dir/logs/bare.log" 2>&1 &
pid[bare]=$!
started_pids+=("${pid[bare]}")

# nginx runs one worker that returns pmsd's bodies from its configuration with
# return 200.
port[nginx]=$(free_port)
nginx_dir="$run_dir/nginx"
mkdir -p "$nginx_dir"
"$python" - "$nginx_dir/nginx.conf" "${port[nginx]}" "$nginx_dir" \
    "$run_dir/identity.body" "$identity_type" "$run_dir/root.body" "$root_type" <<'EOF'
import sys

conf, port, prefix, identity_body, identity_type, root_body, root_type = sys.argv[1:]


def quoted(text):
    # nginx unescapes \" \\ and \n in double-quoted strings. A "$" would start
    # a variable in return's text, and nginx has no escape for it there.
    if "$" in text:
        sys.exit("bench: a body contains '$', which nginx's return cannot serve verbatim")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def body(path):
    with open(path, encoding="utf-8") as file:
        return file.read()


with open(conf, "w") as file:
    file.write(f"""worker_processes 1;
worker_rlimit_nofile 20000;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{
    worker_connections 16384;
}}
http {{
    access_log off;
    keepalive_requests 1000000000;
    keepalive_timeout 600s;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location = /identity {{
            default_type {quoted(identity_type)};
            return 200 {quoted(body(identity_body))};
        }}
        location = / {{
            default_type {quoted(root_type)};
            return 200 {quoted(body(root_body))};
        }}
    }}
}}
""")
EOF
taskset -c "$SERVER_CPU" nginx -p "$nginx_dir" -e "$nginx_dir/error.log" -c "$nginx_dir/nginx.conf" \
    -g 'daemon off;' >"$run_dir/logs/nginx.log" 2>&1 &
pid[nginx]=$!
started_pids+=("${pid[nginx]}")

port[node]=$(free_port)
taskset -c "$SERVER_CPU" node "$here/contenders/node-server.js" "${port[node]}" \
    "$run_dir/identity.body" "$identity_type" >"$run_dir/logs/node.log" 2>&1 &
pid[node]=$!
started_pids+=("${pid[node]}")

port[uvicorn]=$(free_port)
BENCH_BODY_FILE="$run_dir/identity.body" BENCH_CONTENT_TYPE="$identity_type" \
    taskset -c "$SERVER_CPU" "$venv/bin/uvicorn" asgi_app:app --app-dir "$here/contenders" \
    --host 127.0.0.1 --port "${port[uvicorn]}" --loop uvloop --http httptools --workers 1 \
    --no-access-log --log-level warning --timeout-keep-alive 600 --backlog 4096 \
    >"$run_dir/logs/uvicorn.log" 2>&1 &
pid[uvicorn]=$!
started_pids+=("${pid[uvicorn]}")

for server in bare nginx node uvicorn; do
    wait_http "$server" "${pid[$server]}" "http://127.0.0.1:${port[$server]}/identity"
done

# The processes whose CPU time counts for each server. nginx's worker does the
# work, and the other servers run in the process the script started.
declare -A cpu_pids
for server in "${SERVERS[@]}"; do
    cpu_pids[$server]=${pid[$server]}
done
cpu_pids[nginx]=$(pgrep -P "${pid[nginx]}" | tr '\n' ' ')
[ -n "${cpu_pids[nginx]// /}" ] || fail "nginx started no worker process"

# Every contender must serve pmsd's bytes with pmsd's Content-Type.
check_same() {
    local server=$1 path=$2 name=$3
    fetch "http://127.0.0.1:${port[$server]}$path" "check-$server-$name"
    cmp -s "$run_dir/check-$server-$name.body" "$run_dir/$name.body" \
        || fail "$server's body for $path differs from pmsd's"
    cmp -s "$run_dir/check-$server-$name.type" "$run_dir/$name.type" \
        || fail "$server's Content-Type for $path is '$(cat "$run_dir/check-$server-$name.type")', pmsd's '$(cat "$run_dir/$name.type")'"
}
for server in bare nginx node uvicorn; do
    check_same "$server" /identity identity
done
check_same nginx / root
log "every contender serves pmsd's /identity bytes ($(wc -c < "$run_dir/identity.body") bytes, $identity_type)"

# ---------------------------------------------------------------- load

runs_csv="$out/runs.csv"
echo "round,workload,server,connections,pipeline,duration_s,requests,duration_us,rps,bytes,connect_errors,read_errors,write_errors,status_errors,timeouts,latency_p50_us,latency_p99_us,server_cpu_s,client_cpu_s" > "$runs_csv"

# wrk_run SECONDS CONNECTIONS URL [VAR=VALUE...]: runs wrk pinned to the
# client CPU with bench.lua and prints its BENCH line's fields, one
# "name=value" per word, and client_cpu_s, the CPU time wrk used.
wrk_run() {
    local seconds=$1 connections=$2 url=$3 output
    shift 3
    output=$(env "$@" /usr/bin/time -f 'CLIENT_CPU %U %S' taskset -c "$CLIENT_CPU" \
        wrk -t1 -c"$connections" -d"${seconds}s" --timeout 10s -s "$here/wrk/bench.lua" "$url" 2>&1) \
        || { echo "$output" >&2; fail "wrk failed on $url"; }
    local line client
    line=$(grep '^BENCH ' <<<"$output") || { echo "$output" >&2; fail "wrk printed no result for $url"; }
    client=$(awk '$1 == "CLIENT_CPU" { printf "%.2f", $2 + $3 }' <<<"$output")
    echo "${line#BENCH } client_cpu_s=${client:-0}"
}

# measure ROUND WORKLOAD SERVER PORT CPU_PIDS CONNECTIONS PIPELINE PATH [VAR=VALUE...]:
# one wrk run, appended to runs.csv with the CPU time the server's processes
# (CPU_PIDS, space-separated) used meanwhile.
measure() {
    local round=$1 workload=$2 server=$3 server_port=$4 cpu_pids=$5 connections=$6 pipeline=$7 path=$8
    shift 8
    local fields requests duration_us bytes connect_errors read_errors write_errors
    local status_errors timeouts latency_p50_us latency_p99_us rps field errors note=""
    local ticks_before ticks_after server_cpu_s client_cpu_s
    # shellcheck disable=SC2086 # a list of process ids
    ticks_before=$(cpu_ticks $cpu_pids)
    fields=$(wrk_run "$duration" "$connections" "http://127.0.0.1:$server_port$path" \
        BENCH_PIPELINE="$pipeline" "$@")
    # shellcheck disable=SC2086
    ticks_after=$(cpu_ticks $cpu_pids)
    server_cpu_s=$(awk -v t=$((ticks_after - ticks_before)) -v hz="$clock_ticks" 'BEGIN { printf "%.2f", t / hz }')
    for field in $fields; do
        case "${field%%=*}" in
            requests|duration_us|bytes|connect_errors|read_errors|write_errors|status_errors|timeouts|latency_p50_us|latency_p99_us|client_cpu_s)
                printf -v "${field%%=*}" '%s' "${field#*=}" ;;
        esac
    done
    rps=$(awk -v r="$requests" -v d="$duration_us" 'BEGIN { printf "%.1f", r / (d / 1e6) }')
    echo "$round,$workload,$server,$connections,$pipeline,$duration,$requests,$duration_us,$rps,$bytes,$connect_errors,$read_errors,$write_errors,$status_errors,$timeouts,$latency_p50_us,$latency_p99_us,$server_cpu_s,$client_cpu_s" >> "$runs_csv"
    errors=$((connect_errors + read_errors + write_errors + status_errors + timeouts))
    if [ "$errors" -gt 0 ]; then
        note=" ($errors errors)"
    fi
    printf 'bench: round %d/%d %-10s %-8s c=%-5s %10.0f req/s, server CPU %5.2f s, wrk CPU %5.2f s%s\n' \
        "$round" "$rounds" "$workload" "$server" "$connections" "$rps" "$server_cpu_s" "$client_cpu_s" \
        "$note" >&2
    sleep 1
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
log "load average before the runs: $load_before"

# A token-minting pmsd of its own, so the tokens it keeps do not sit in the
# process that serves the other workloads.
port[pmsd_mint]=$(free_port)
start_pmsd pmsd-mint "${port[pmsd_mint]}" 100000000
pid[pmsd_mint]=$started_pid
token_path="/security/token?type=delegation&scope=all"

log "warming up every server for ${warmup} s"
for server in "${SERVERS[@]}"; do
    wrk_run "$warmup" 64 "http://127.0.0.1:${port[$server]}/identity" >/dev/null
done
wrk_run "$warmup" 64 "http://127.0.0.1:${port[pmsd_mint]}$token_path" \
    BENCH_METHOD=POST BENCH_TOKEN="$admin_token" >/dev/null

# Rounds interleave the servers, so a burst of load from elsewhere on the
# machine spreads over all of them instead of hitting one.
for round in $(seq 1 "$rounds"); do
    for server in "${SERVERS[@]}"; do
        measure "$round" identity "$server" "${port[$server]}" "${cpu_pids[$server]}" 64 1 /identity
    done
    for server in "${SERVERS[@]}"; do
        measure "$round" pipelined "$server" "${port[$server]}" "${cpu_pids[$server]}" 64 16 /identity
    done
    measure "$round" root_xml pmsd "${port[pmsd]}" "${pid[pmsd]}" 64 1 / BENCH_TOKEN="$admin_token"
    measure "$round" root_xml nginx "${port[nginx]}" "${cpu_pids[nginx]}" 64 1 /
    measure "$round" root_json pmsd "${port[pmsd]}" "${pid[pmsd]}" 64 1 / \
        BENCH_TOKEN="$admin_token" BENCH_ACCEPT=application/json
    measure "$round" token pmsd "${port[pmsd_mint]}" "${pid[pmsd_mint]}" 64 1 "$token_path" \
        BENCH_METHOD=POST BENCH_TOKEN="$admin_token"
    for connections in "${SWEEP_CONNECTIONS[@]}"; do
        for server in "${SERVERS[@]}"; do
            measure "$round" sweep "$server" "${port[$server]}" "${cpu_pids[$server]}" \
                "$connections" 1 /identity
        done
    done
done
stop_server "${pid[pmsd_mint]}"

for server in "${SERVERS[@]}"; do
    stop_server "${pid[$server]}"
done

# ---------------------------------------------------------------- memory

memory_csv="$out/memory.csv"
echo "measure,value,detail" > "$memory_csv"

log "memory: $IDLE_CONNECTIONS idle keep-alive connections"
port[idle]=$(free_port)
start_pmsd pmsd-idle "${port[idle]}" 100000000
pid[idle]=$started_pid
sleep 1
idle_before=$(rss_bytes "${pid[idle]}")
idle_fifo="$run_dir/idle-stdin"
mkfifo "$idle_fifo"
"$python" "$here/tools/idle_connections.py" 127.0.0.1 "${port[idle]}" "$IDLE_CONNECTIONS" 300 \
    <"$idle_fifo" >"$run_dir/idle-client.out" 2>"$run_dir/logs/idle-client.log" &
idle_client=$!
started_pids+=("$idle_client")
exec 3>"$idle_fifo"
for _ in $(seq 1 1200); do
    grep -q '^ready' "$run_dir/idle-client.out" 2>/dev/null && break
    kill -0 "$idle_client" 2>/dev/null || break
    sleep 0.1
done
grep -q "^ready $IDLE_CONNECTIONS\$" "$run_dir/idle-client.out" \
    || fail "the idle client did not open $IDLE_CONNECTIONS connections; see $run_dir/logs/idle-client.log"
sleep 2
idle_rss=$(rss_bytes "${pid[idle]}")
idle_fds=$(find "/proc/${pid[idle]}/fd" -mindepth 1 -maxdepth 1 | wc -l)
exec 3>&-
stop_status=0
wait "$idle_client" || stop_status=$?
forget_pid "$idle_client"
[ "$stop_status" = 0 ] || fail "the idle client failed; see $run_dir/logs/idle-client.log"
closed=$(awk '$1 == "closed_by_server" { print $2 }' "$run_dir/idle-client.out")
[ "$closed" = 0 ] || fail "pmsd closed $closed of the idle connections while they were held"
stop_server "${pid[idle]}"
echo "idle_baseline_rss_bytes,$idle_before,after start and one request" >> "$memory_csv"
echo "idle_rss_bytes,$idle_rss,$IDLE_CONNECTIONS connections open; pmsd held $idle_fds file descriptors" >> "$memory_csv"
log "memory: RSS $((idle_before / 1024)) KiB before, $((idle_rss / 1024)) KiB with $IDLE_CONNECTIONS connections"

log "memory: minting $TOKENS_TO_MINT transient tokens"
port[mint]=$(free_port)
# The store's limit is the count to mint: once it returns 403, exactly that
# many tokens are live.
start_pmsd pmsd-mint-memory "${port[mint]}" "$TOKENS_TO_MINT"
pid[mint]=$started_pid
sleep 1
mint_before=$(rss_bytes "${pid[mint]}")
minted=0
mint_started=$(date +%s)
for _ in $(seq 1 60); do
    fields=$(wrk_run 5 64 "http://127.0.0.1:${port[mint]}$token_path" \
        BENCH_METHOD=POST BENCH_TOKEN="$admin_token")
    requests=$(grep -o 'requests=[0-9]*' <<<"$fields" | cut -d= -f2)
    status_errors=$(grep -o 'status_errors=[0-9]*' <<<"$fields" | cut -d= -f2)
    minted=$((minted + requests - status_errors))
    if [ "$status_errors" -gt 0 ]; then
        break
    fi
done
mint_seconds=$(($(date +%s) - mint_started))
full_status=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "X-Plex-Token: $admin_token" \
    "http://127.0.0.1:${port[mint]}$token_path")
[ "$full_status" = 403 ] || fail "pmsd still mints after $minted tokens (status $full_status), but its store should be full"
mint_after=$(rss_bytes "${pid[mint]}")
stop_server "${pid[mint]}"
echo "token_baseline_rss_bytes,$mint_before,after start and one request" >> "$memory_csv"
echo "token_rss_bytes,$mint_after,store full at $TOKENS_TO_MINT live tokens; wrk counted $minted 200 answers in ${mint_seconds} s" >> "$memory_csv"
echo "token_rss_growth_bytes,$((mint_after - mint_before)),$TOKENS_TO_MINT tokens" >> "$memory_csv"
log "memory: RSS $((mint_before / 1024)) KiB before, $((mint_after / 1024)) KiB after $TOKENS_TO_MINT tokens"

# ---------------------------------------------------------------- report

load_after=$(cut -d' ' -f1-3 /proc/loadavg)
LOAD_BEFORE="$load_before" LOAD_AFTER="$load_after" MODE="$mode" ROUNDS="$rounds" DURATION="$duration" \
PMSD_SOURCE="$pmsd_source" SERVER_CPU="$SERVER_CPU" CLIENT_CPU="$CLIENT_CPU" \
NGINX_VERSION="$(nginx -v 2>&1 | sed 's/^nginx version: //')" NODE_VERSION="$(node --version)" \
WRK_VERSION="$(wrk -v 2>&1 | head -1 | cut -d' ' -f2)" SWIFT_VERSION="$(swift --version 2>/dev/null | head -1)" \
UVICORN_VERSION="$("$venv/bin/python" -c 'import uvicorn; print(uvicorn.__version__)')" \
IDENTITY_BYTES="$(wc -c < "$run_dir/identity.body")" ROOT_BYTES="$(wc -c < "$run_dir/root.body")" \
    "$venv/bin/python" - "$out/meta.json" <<'EOF'
import json, os, platform, sys, time

cpu_model = "unknown"
with open("/proc/cpuinfo") as cpuinfo:
    for line in cpuinfo:
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
meta = {
    "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "mode": os.environ["MODE"],
    "rounds": int(os.environ["ROUNDS"]),
    "duration_s": int(os.environ["DURATION"]),
    "nproc": os.cpu_count(),
    "cpu_model": cpu_model,
    "kernel": platform.release(),
    "load_before": os.environ["LOAD_BEFORE"],
    "load_after": os.environ["LOAD_AFTER"],
    "server_cpu": int(os.environ["SERVER_CPU"]),
    "client_cpu": int(os.environ["CLIENT_CPU"]),
    "pmsd_source": os.environ["PMSD_SOURCE"],
    "identity_body_bytes": int(os.environ["IDENTITY_BYTES"]),
    "root_body_bytes": int(os.environ["ROOT_BYTES"]),
    "versions": {
        "nginx": os.environ["NGINX_VERSION"],
        "node": os.environ["NODE_VERSION"],
        "uvicorn": os.environ["UVICORN_VERSION"],
        "wrk": os.environ["WRK_VERSION"],
        "swift": os.environ["SWIFT_VERSION"],
        "python": platform.python_version(),
    },
}
with open(sys.argv[1], "w") as file:
    json.dump(meta, file, indent=2)
    file.write("\n")
EOF

"$venv/bin/python" "$here/tools/analyze.py" "$out" > "$run_dir/table.out"

mkdir -p "$results"
for file in runs.csv memory.csv meta.json summary.json table.txt sweep.png; do
    cp "$out/$file" "$results/$file"
done
cat "$run_dir/table.out"
log "results written to Benchmarks/results/"

"""Summarize one benchmark run: medians, ratios, targets, the sweep plot.

    python analyze.py RESULTS_DIR

Reads RESULTS_DIR/runs.csv (one row per wrk run), RESULTS_DIR/memory.csv and
RESULTS_DIR/meta.json, all written by run.sh, and writes
RESULTS_DIR/summary.json, RESULTS_DIR/table.txt and RESULTS_DIR/sweep.png.
Prints the table. Exits 0 whether targets pass or not; a missing input is an
error.
"""
import csv
import json
import os
import statistics
import sys

SERVERS = ["pmsd", "nginx", "node", "uvicorn", "bare"]
SERVER_LABELS = {
    "pmsd": "pmsd",
    "nginx": "nginx (1 worker)",
    "node": "Node.js http",
    "uvicorn": "uvicorn+uvloop+httptools",
    "bare": "bare libuv+llhttp C",
}
WORKLOADS = [
    ("identity", "GET /identity, 64 connections"),
    ("pipelined", "GET /identity, 64 connections, 16-deep pipelining"),
    ("root_xml", "GET / (admin token), XML, 64 connections"),
    ("root_json", "GET / (admin token), JSON, 64 connections"),
    ("token", "POST /security/token, 64 connections"),
]
MIB = 1024 * 1024


def load_runs(path):
    runs = []
    with open(path, newline="") as file:
        for row in csv.DictReader(file):
            for key in ("round", "connections", "pipeline", "requests", "duration_us", "bytes",
                        "connect_errors", "read_errors", "write_errors", "status_errors",
                        "timeouts", "latency_p50_us", "latency_p99_us"):
                row[key] = int(row[key])
            row["rps"] = float(row["rps"])
            for key in ("server_cpu_s", "client_cpu_s"):
                row[key] = float(row[key])
            seconds = row["duration_us"] / 1e6
            # Shares of the run's time that the server and wrk spent on a CPU.
            row["server_busy"] = row["server_cpu_s"] / seconds
            row["client_busy"] = row["client_cpu_s"] / seconds
            # CPU time the server spent per completed request. Other work that
            # takes turns on the server's core disturbs it less than req/s.
            row["cpu_us_per_request"] = (row["server_cpu_s"] * 1e6 / row["requests"]
                                         if row["requests"] else None)
            runs.append(row)
    return runs


def load_memory(path):
    memory = {}
    with open(path, newline="") as file:
        for row in csv.DictReader(file):
            memory[row["measure"]] = {"value": int(row["value"]), "detail": row["detail"]}
    return memory


def median_of(runs, workload, server, connections=None):
    chosen = [r for r in runs
              if r["workload"] == workload and r["server"] == server
              and (connections is None or r["connections"] == connections)]
    if not chosen:
        return None
    values = [r["rps"] for r in chosen]
    cpu = [r["cpu_us_per_request"] for r in chosen if r["cpu_us_per_request"] is not None]
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "runs": len(values),
            "cpu_us_per_request": statistics.median(cpu) if cpu else None,
            "server_busy": statistics.median(r["server_busy"] for r in chosen),
            "client_busy": statistics.median(r["client_busy"] for r in chosen)}


def ratio(a, b):
    if a is None or b is None or b["median"] == 0:
        return None
    return a["median"] / b["median"]


def cpu_ratio(a, b):
    """Return how many times as many requests a completes per CPU second as b."""
    if a is None or b is None or not a["cpu_us_per_request"] or not b["cpu_us_per_request"]:
        return None
    return b["cpu_us_per_request"] / a["cpu_us_per_request"]


def fmt_rate(value):
    return "-" if value is None else f"{value:,.0f}"


def fmt_ratio(value):
    return "-" if value is None else f"{value:.2f}x"


def fmt_share(value):
    return "-" if value is None else f"{value * 100:.0f}%"


def fmt_us(value):
    return "-" if value is None else f"{value:.2f}"


def fmt_mib(value):
    return "-" if value is None else f"{value / MIB:.1f} MiB"


def build(results_dir):
    runs = load_runs(os.path.join(results_dir, "runs.csv"))
    memory = load_memory(os.path.join(results_dir, "memory.csv"))
    with open(os.path.join(results_dir, "meta.json")) as file:
        meta = json.load(file)

    medians = {}
    for workload, _ in WORKLOADS:
        for server in SERVERS:
            m = median_of(runs, workload, server)
            if m is not None:
                medians.setdefault(workload, {})[server] = m
    sweep_points = sorted({r["connections"] for r in runs if r["workload"] == "sweep"})
    sweep = {}
    for server in SERVERS:
        for connections in sweep_points:
            m = median_of(runs, "sweep", server, connections)
            if m is not None:
                sweep.setdefault(server, {})[str(connections)] = m

    def get(workload, server):
        return medians.get(workload, {}).get(server)

    targets = []

    def target(name, value, limit, kind, unit, by_cpu=None):
        if value is None:
            verdict = "MISSING"
        elif kind == ">=":
            verdict = "PASS" if value >= limit else "MISS"
        else:
            verdict = "PASS" if value <= limit else "MISS"
        targets.append({"target": name, "value": value, "limit": limit, "kind": kind,
                        "unit": unit, "verdict": verdict, "by_cpu_time": by_cpu})

    def rate_target(name, workload_a, server_a, workload_b, server_b, limit):
        a, b = get(workload_a, server_a), get(workload_b, server_b)
        target(name, ratio(a, b), limit, ">=", "x", cpu_ratio(a, b))

    rate_target("GET /identity, 64 connections: pmsd / nginx",
                "identity", "pmsd", "identity", "nginx", 1.05)
    rate_target("GET /identity, 64 connections: pmsd / bare C loop",
                "identity", "pmsd", "identity", "bare", 0.9)
    rate_target("GET /identity, 16-deep pipelining: pmsd / nginx",
                "pipelined", "pmsd", "pipelined", "nginx", 8.0)
    rate_target("GET /identity, 16-deep pipelining: pmsd / bare C loop",
                "pipelined", "pmsd", "pipelined", "bare", 0.8)
    rate_target("GET / XML: pmsd / nginx serving the same bytes",
                "root_xml", "pmsd", "root_xml", "nginx", 1.0)
    rate_target("POST /security/token: pmsd / pmsd's GET /identity",
                "token", "pmsd", "identity", "pmsd", 0.8)
    idle = memory.get("idle_rss_bytes")
    target("RSS with 10 000 idle keep-alive connections",
           idle["value"] if idle else None, 64 * MIB, "<=", "bytes")
    growth = memory.get("token_rss_growth_bytes")
    target("RSS growth after 1 000 000 transient tokens",
           growth["value"] if growth else None, 256 * MIB, "<=", "bytes")

    flagged = [r for r in runs if r["connect_errors"] or r["read_errors"] or r["write_errors"]
               or r["status_errors"] or r["timeouts"]]

    summary = {"meta": meta, "medians": medians, "sweep": sweep, "memory": memory,
               "targets": targets,
               "runs_with_errors": [{k: r[k] for k in ("round", "workload", "server", "connections",
                                                        "connect_errors", "read_errors", "write_errors",
                                                        "status_errors", "timeouts")}
                                    for r in flagged]}
    return summary


def render_header(meta):
    return [
        f"pmsd benchmark: {meta['mode']} run, {meta['rounds']} round(s) of "
        f"{meta['duration_s']} s per workload and server, medians of the rounds",
        f"machine: {meta['nproc']} cores, {meta['cpu_model']}, kernel {meta['kernel']}, "
        f"server on CPU {meta['server_cpu']}, wrk -t1 on CPU {meta['client_cpu']}, loopback",
        f"load average before: {meta['load_before']}, after: {meta.get('load_after', '-')}",
        f"pmsd: {meta['pmsd_source']}",
        "",
    ]


def render_throughput(medians):
    header = (f"{'workload':<52} {'server':<26} {'req/s':>11} {'min..max':>21} {'/nginx':>7} {'/bare':>7}"
              f" {'CPU us/req':>10} {'srv CPU':>8} {'wrk CPU':>8}")
    lines = ["Throughput. 'CPU us/req' is the server's CPU time per request, 'srv CPU' and 'wrk CPU'",
             "the server's and wrk's CPU time as a share of the run's time (medians of the rounds).",
             header, "-" * len(header)]
    for workload, label in WORKLOADS:
        row_servers = medians.get(workload, {})
        nginx = row_servers.get("nginx")
        bare = row_servers.get("bare")
        first = True
        for server in SERVERS:
            m = row_servers.get(server)
            if m is None:
                continue
            spread = f"{fmt_rate(m['min'])}..{fmt_rate(m['max'])}"
            lines.append(f"{label if first else '':<52} {SERVER_LABELS[server]:<26} "
                         f"{fmt_rate(m['median']):>11} {spread:>21} "
                         f"{fmt_ratio(ratio(m, nginx)):>7} {fmt_ratio(ratio(m, bare)):>7}"
                         f" {fmt_us(m['cpu_us_per_request']):>10} {fmt_share(m['server_busy']):>8}"
                         f" {fmt_share(m['client_busy']):>8}")
            first = False
    lines.append("")
    return lines


def render_sweep(sweep):
    points = sorted({int(c) for server in sweep.values() for c in server})
    if not points:
        return []
    head = f"{'connections':>11} " + " ".join(f"{s:>10}" for s in SERVERS if s in sweep)
    lines = ["GET /identity sweep, requests/s (median), wrk -t1", head, "-" * len(head)]
    for c in points:
        cells = []
        for server in SERVERS:
            if server not in sweep:
                continue
            m = sweep[server].get(str(c))
            cells.append(f"{fmt_rate(m['median'] if m else None):>10}")
        lines.append(f"{c:>11} " + " ".join(cells))
    lines.append("")
    return lines


def render_memory(memory):
    lines = ["Memory (pmsd, VmRSS from /proc/PID/status)"]
    for key, label in (("idle_baseline_rss_bytes", "RSS before the idle connections"),
                       ("idle_rss_bytes", "RSS with the idle keep-alive connections open"),
                       ("token_baseline_rss_bytes", "RSS before minting"),
                       ("token_rss_bytes", "RSS after minting"),
                       ("token_rss_growth_bytes", "RSS growth from minting")):
        if key in memory:
            detail = memory[key]["detail"]
            lines.append(f"  {label:<48} {fmt_mib(memory[key]['value']):>12}"
                         + (f"  ({detail})" if detail else ""))
    lines.append("")
    return lines


def render_targets(targets, runs_with_errors):
    lines = ["Targets. The verdict is on the req/s medians. 'per CPU s' compares requests per",
             "second of the server's own CPU time instead, which load from elsewhere disturbs less."]
    for t in targets:
        extra = ""
        if t["unit"] == "x":
            value = fmt_ratio(t["value"])
            limit = f"{t['limit']:.2f}x"
            if t["by_cpu_time"] is not None:
                extra = f"  per CPU s: {fmt_ratio(t['by_cpu_time'])}"
        else:
            value = fmt_mib(t["value"])
            limit = fmt_mib(t["limit"])
        lines.append(f"  {t['verdict']:<7} {t['target']:<56} {value:>10}  (target {t['kind']} {limit}){extra}")
    if runs_with_errors:
        lines.append("")
        lines.append("Runs in which wrk counted errors (socket errors or status >= 400):")
        for r in runs_with_errors:
            lines.append("  " + ", ".join(f"{k}={v}" for k, v in r.items()))
    return lines


def render(summary):
    lines = (render_header(summary["meta"])
             + render_throughput(summary["medians"])
             + render_sweep(summary["sweep"])
             + render_memory(summary["memory"])
             + render_targets(summary["targets"], summary["runs_with_errors"]))
    return "\n".join(lines) + "\n"


def plot(summary, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sweep = summary["sweep"]
    meta = summary["meta"]
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    markers = {"pmsd": "o", "nginx": "s", "node": "^", "uvicorn": "v", "bare": "D"}
    for server in SERVERS:
        if server not in sweep:
            continue
        points = sorted((int(c), m["median"]) for c, m in sweep[server].items())
        ax.plot([p[0] for p in points], [p[1] for p in points], marker=markers[server],
                label=SERVER_LABELS[server])
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted({int(c) for s in sweep.values() for c in s}))
    ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.set_xlabel("keep-alive connections (wrk -t1)")
    ax.set_ylabel("requests/s (median)")
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v / 1000:.0f}k"))
    ax.set_title(f"GET /identity, server on 1 core, {meta['rounds']} x {meta['duration_s']} s per point")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 64
    results_dir = sys.argv[1]
    summary = build(results_dir)
    text = render(summary)
    with open(os.path.join(results_dir, "summary.json"), "w") as file:
        json.dump(summary, file, indent=2, sort_keys=True)
        file.write("\n")
    with open(os.path.join(results_dir, "table.txt"), "w") as file:
        file.write(text)
    if summary["sweep"]:
        plot(summary, os.path.join(results_dir, "sweep.png"))
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

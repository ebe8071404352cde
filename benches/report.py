"""The benchmark report (benches/harness.py's results -> Markdown): the README's table
(`render_md`), the details page bench-results/latest.md (`render_details`) and the README
update (its one write). Documents in, text out; the figures are measured by harness.py, bulk.py and
tls.py, whose own tables (`bulk.render_bulk`, `tls.render_tls`) are placed here.
"""

import os
import re

import bulk
from common import ROOT, fmt

ANCHOR = {
    "note": "shared/anchors: HAProxy 2.6.12 / nginx 1.22.1 on a 2-core VM (another run)",
    "haproxy": {"rps_c50": 75800, "cpu_c50": 12.65, "p99_c50": 1250, "instr_c50": 59700, "instr_c1": 61800,
                "sys_c50": 4.11, "sys_c1": 10.0, "ws_kb": 4.8, "idle_mb": 15.5},
    "nginx": {"rps_c50": 64500, "cpu_c50": 14.83, "p99_c50": 1420, "instr_c50": 40100, "instr_c1": 41300,
              "sys_c50": 5.03, "sys_c1": 7.0, "ws_kb": 18.2, "idle_mb": 11.5},
}


def render_md(doc):
    f = doc["figures"]
    m = doc["machine"]
    cols = ["sluice", "haproxy", "nginx", "direct"]
    title = {"sluice": "sluice", "haproxy": "HAProxy", "nginx": "nginx (ka256)", "direct": "direct"}

    def g(fig, t, *path):
        v = f.get(fig, {}).get("targets", {}).get(t)
        for p in path:
            if not isinstance(v, dict):
                return None
            v = v.get(p)
        return v

    rows = []

    def ratio(a, b):
        return f"{a / b:.2f}×" if a is not None and b else "—"

    def check(ok):
        return "" if ok is None else (" ✓" if ok else " ✗")

    def row(label, vals, rat="—", target=""):
        rows.append(f"| {label} | " + " | ".join(vals) + f" | {rat} | {target} |")

    def log_row(fig, label, c, key, digits, scale=1.0, unit="", target=None):
        """The same figure for "sluice-log" (the defaults: access log on, to a file), in the
        sluice column; `target(v_log, v_off)` -> (text, ok)."""
        v, off, ha = g(fig, "sluice-log", f"c{c}", key), g(fig, "sluice", f"c{c}", key), g(fig, "haproxy", f"c{c}", key)
        if v is None:
            return
        text, ok = target(v, off) if target else ("", None)
        vs_off = f" ({v / off:.2f}× log off)" if off else ""
        row(f"↳ {label}, access log on (defaults, to a file)",
            [fmt(v * scale, digits, unit) + vs_off, "—", "—", "—"], ratio(v, ha), text + check(ok))

    if "rps" in f:
        for c in (50, 200):
            v = {t: g("rps", t, f"c{c}", "rps") for t in cols}
            ok = v["sluice"] / v["haproxy"] >= 1.15 if c == 50 and v["sluice"] and v["haproxy"] else None
            row(f"req/s, c={c}", [fmt(v[t] / 1000 if v[t] else None, 1, "k") for t in cols], ratio(v["sluice"], v["haproxy"]),
                ("≥ 1.15× HAProxy" + check(ok)) if c == 50 else "")
            log_row("rps", "req/s", c, "rps", 1, 1 / 1000, "k")
            for pct in ("p50", "p99"):
                v = {t: g("rps", t, f"c{c}", f"{pct}_us") for t in cols}
                ok = v["sluice"] <= v["haproxy"] if pct == "p99" and c == 50 and v["sluice"] and v["haproxy"] else None
                row(f"{pct} latency µs, c={c}", [fmt(v[t], 0) for t in cols], ratio(v["sluice"], v["haproxy"]),
                    ("≤ HAProxy" + check(ok)) if pct == "p99" and c == 50 else "")
        for c in (50, 200):
            v = {t: g("rps", t, f"c{c}", "cpu_us_per_req") for t in cols}
            ok = v["sluice"] / v["haproxy"] <= 0.8 if c == 50 and v["sluice"] and v["haproxy"] else None
            vals = [fmt(v[t], 2) for t in cols[:3]] + [f"(backend {fmt(v['direct'], 2)})" if v["direct"] else "—"]
            row(f"proxy CPU µs/request, c={c}", vals, ratio(v["sluice"], v["haproxy"]),
                ("≤ 0.8× HAProxy" + check(ok)) if c == 50 else "")
            log_row("rps", "proxy CPU µs/request", c, "cpu_us_per_req", 2,
                    target=(lambda v, off: ("≤ 1.10× log off", v <= 1.1 * off if off else None)) if c == 50 else None)
        errs = {t: (g("rps", t, "c50", "errors") or 0) + (g("rps", t, "c200", "errors") or 0) for t in cols}
        non2 = {t: (g("rps", t, "c50", "non2xx") or 0) + (g("rps", t, "c200", "non2xx") or 0) for t in cols}
        if any(errs.values()) or any(non2.values()):
            row("wrk socket errors / non-2xx (all runs)", [f"{errs[t]} / {non2[t]}" if g("rps", t, "c50") else "—" for t in cols])
    if "instr" in f:
        for c in (50, 1):
            v = {t: g("instr", t, f"c{c}", "instr_per_req") for t in cols}
            ka32 = g("instr", "nginx-ka32", f"c{c}", "instr_per_req")
            vals = [fmt(v["sluice"], 0), fmt(v["haproxy"], 0),
                    fmt(v["nginx"], 0) + (f" (ka32 {fmt(ka32, 0)})" if ka32 else ""), "—"]
            ok = v["sluice"] <= 10000 if v["sluice"] else None
            row(f"user instructions/request, c={c}", vals, ratio(v["sluice"], v["haproxy"]), "≤ 10,000" + check(ok))
            log_row("instr", "user instructions/request", c, "instr_per_req", 0,
                    target=lambda v, off: ("≤ 10,000", v <= 10000))
    if "syscalls" in f:
        for c in (50, 1):
            v = {t: g("syscalls", t, f"c{c}", "per_req") for t in cols}
            ka32 = g("syscalls", "nginx-ka32", f"c{c}", "per_req")
            vals = [fmt(v["sluice"], 2), fmt(v["haproxy"], 2),
                    fmt(v["nginx"], 2) + (f" (ka32 {fmt(ka32, 2)})" if ka32 is not None else ""), "—"]
            lim = 4.0 if c == 50 else 6.0
            ok = v["sluice"] <= lim if v["sluice"] is not None else None
            row(f"syscalls/request, c={c}", vals, ratio(v["sluice"], v["haproxy"]), f"≤ {lim:.1f}" + check(ok))
            # One write per loop turn: at c=1 every request is a turn of its own.
            log_row("syscalls", "syscalls/request", c, "per_req", 2,
                    target=(lambda v, off: ("≤ 4.3", v <= 4.3)) if c == 50 else None)
    if "wsmem" in f:
        for n in (2000, 5000):
            v = {t: g("wsmem", t, f"n{n}", "bytes_per_conn") for t in cols}
            if not any(v.values()):
                continue
            ok = v["sluice"] <= 1024 if n == 5000 and v["sluice"] is not None else None
            row(f"RSS per idle WebSocket, {n} conns", [fmt(v[t] / 1024 if v[t] is not None else None, 2, " KiB") for t in cols[:3]] + ["—"],
                ratio(v["sluice"], v["haproxy"]), ("≤ 1 KiB" + check(ok)) if n == 5000 else "")
    if "idle" in f:
        v = {t: g("idle", t, "rss_kb") for t in cols}
        master = g("idle", "nginx", "master_rss_kb")
        dflt = g("idle", "sluice-default-pool", "rss_kb")
        static = g("idle", "sluice-static-musl", "rss_kb")
        mb = lambda kb: fmt(kb * 1024 / 1e6 if kb else None, 2, " MB")
        vals = [mb(v["sluice"]) + (f" (min_workers=1: {mb(dflt)}; static musl with `tls`, as shipped: {mb(static)})" if dflt else ""),
                mb(v["haproxy"]), mb(v["nginx"]) + (f" + master {mb(master)}" if master else ""), "—"]
        best = static or v["sluice"]
        ok = best * 1024 <= 2e6 if best else None
        row("idle RSS after start", vals, ratio(v["sluice"], v["haproxy"]), "≤ 2 MB" + check(ok))
    if "size" in f:
        s = f["size"]["targets"]
        sl = s.get("sluice", {}).get("bytes")
        musl = s.get("sluice-musl-static", {}).get("bytes")
        tls = s.get("sluice-musl-static-tls", {}).get("bytes")
        vals = [fmt(sl / 1e6 if sl else None, 2, " MB") + (f" (static musl {musl / 1e6:.2f} MB)" if musl else "")
                + (f"; static musl with `tls`, the image's: {tls / 1e6:.2f} MB (issue 17 goal ≤ 2.2 MB"
                   f"{check(tls <= 2.2e6)})" if tls else ""),
                fmt(s["haproxy"]["bytes"] / 1e6, 2, " MB") + " (dyn.)" if "haproxy" in s else "—",
                fmt(s["nginx"]["bytes"] / 1e6, 2, " MB") + " (dyn.)" if "nginx" in s else "—", "—"]
        ok = (musl or sl) <= 1.5e6 if (musl or sl) else None
        row("binary size (stripped)", vals, "—", "static ≤ 1.5 MB" + check(ok))
    if "stream" in f:
        v = {t: g("stream", t) for t in cols}
        vals = []
        for t in cols:
            r = v[t]
            vals.append(f"{r['rss_max_kb'] * 1024 / 1e6:.2f} MB peak ({r['mb_per_s']:.0f} MB/s)" if r and r.get("status") == 200
                        else ("failed: " + str(r.get("status") or r.get("error")) if r else "—"))
        row("RSS while streaming a 1 GiB upload", vals)

    head = ["| figure | " + " | ".join(title[t] for t in cols) + " | sluice ÷ HAProxy | target (issue 7; ↳ rows: issue 14) |",
            "|---|" + "---|" * (len(cols) + 2)]
    rps_method = f.get("rps", {}).get("method", "")
    lines = [
        f"Measured {doc['date']} by `python3 benches/harness.py{' --quick' if doc.get('quick') else ''}"
        f"{' --pin' if doc.get('pinned') else ''}` on "
        f"{m['nproc']} × {m['cpu_model']}, Linux {m['kernel']} (load average at start {' '.join(m['loadavg'])}; "
        f"a shared, noisy VM: compare ratios within one run). sluice {m['sluice_commit']}"
        f"{' with workers=' + str(m['sluice_workers']) if m.get('sluice_workers', 1) != 1 else ''}, "
        f"HAProxy {m['haproxy']}, nginx {m['nginx']}, wrk {m['wrk']}.",
        "",
    ] + head + rows + [
        "",
        f"Throughput: {rps_method}. " if rps_method else "",
        "Pinned (--pin): each proxy on core 0 alone, wrk and the backends on core 1." if doc.get("pinned") else "",
    ]
    dates = {k: v.get("date") for k, v in f.items() if isinstance(v, dict) and v.get("date") and v.get("date") != doc["date"]}
    if dates:
        lines.append("Figures from earlier runs: " + ", ".join(f"{k} {d}" for k, d in dates.items()) + ".")
    lines.append("CPU = utime+stime of the proxy over the wrk run / requests; instructions = (Ir(2N) − Ir(N)) / N under "
                 "callgrind, N = 2000 over 50 (or 1) keep-alive connections; syscalls = the same under `strace -f -c`, "
                 "N = 1000; nginx (ka256) = upstream keepalive 256, ka32 = keepalive 32. Raw outputs: bench-results/<date>/; "
                 "syscall breakdown and hot functions: bench-results/latest.md.")
    lines.append("")
    lines.append("Reproduce: `python3 benches/harness.py [--quick] [--only rps,cpu,instr,syscalls,wsmem,idle,size,stream]` "
                 "or `cargo bench` (needs wrk, haproxy, nginx-light, valgrind, strace; about 7 minutes).")
    bulk_md = bulk.render_bulk(doc)
    if bulk_md:
        lines += ["", bulk_md]
    import tls  # benches/tls.py, imported when first needed
    tls_md = tls.render_tls(doc)
    if tls_md:
        lines += ["", tls_md]
    if doc.get("notes"):
        lines += ["", "Notes from this run:"] + [f"- {n}" for n in doc["notes"]]
    return "\n".join(l for l in lines if l is not None) + "\n"


def render_details(doc):
    """Syscall breakdown and hot functions: for bench-results/latest.md, not the README."""
    f = doc["figures"]
    out = []
    io = bulk.render_bulk_io(doc)
    if io:
        out += [io]
    sc = f.get("syscalls", {}).get("targets", {})
    if sc:
        cols = [(t, c) for c in ("c50", "c1") for t in ("sluice", "haproxy", "nginx", "nginx-ka32") if sc.get(t, {}).get(c)]
        names = sorted({n for t, c in cols for n in sc[t][c]["breakdown"]},
                       key=lambda n: -max(sc[t][c]["breakdown"].get(n, 0) for t, c in cols))
        out += ["### Syscalls per request, by call", "",
                "| syscall | " + " | ".join(f"{t} {c.replace('c', 'c=')}" for t, c in cols) + " |",
                "|---|" + "---|" * len(cols)]
        for n in names:
            out.append(f"| {n} | " + " | ".join(f"{sc[t][c]['breakdown'].get(n, 0):.2f}" for t, c in cols) + " |")
        out.append("| **total** | " + " | ".join(f"**{sc[t][c]['per_req']:.2f}**" for t, c in cols) + " |")
        out.append("")
    hot = f.get("hot", {})
    for t in ("sluice", "haproxy", "nginx"):
        if hot.get(t):
            out += [f"### {t}: user instructions per request by function (self cost, c=50, top 15)", "",
                    "| instr/req | function |", "|---:|---|"]
            out += [f"| {h['instr_per_req']:,.0f} | `{h['function'][:120]}` |" for h in hot[t]]
            out.append("")
    if doc.get("sluice_stderr"):
        out += ["### sluice stderr", ""]
        for k, lines in doc["sluice_stderr"].items():
            out += [f"{k}:", "```"] + lines[:20] + ["```", ""]
    return "\n".join(out)


def update_readme(md):
    path = os.path.join(ROOT, "README.md")
    with open(path) as f:
        text = f.read()
    block = "## Benchmarks\n\n<!-- bench:start (written by benches/harness.py --update-readme) -->\n" + md + "<!-- bench:end -->\n"
    m = re.search(r"## Benchmarks\n.*?<!-- bench:end -->\n", text, re.S)
    if m:
        text = text[:m.start()] + block + text[m.end():]
    else:
        text = text.rstrip("\n") + "\n\n" + block
    with open(path, "w") as f:
        f.write(text)


# --------------------------------------------------------------------------------------------

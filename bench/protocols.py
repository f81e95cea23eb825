"""Ingest protocols benchmark (issue 11): line protocol and remote write, seismo against
VictoriaMetrics receiving the same payloads in the same run.

`.venv/bin/python bench/protocols.py [--series 10000 --points 60 --batch 5000]`:
1. generates SERIES x POINTS random-walk samples and encodes them once as Influx line
   protocol bodies (ns timestamps, one line per sample, like Telegraf) and as snappy
   protobuf remote-write bodies (BATCH samples of distinct series per request, like
   Prometheus' queue manager);
2. times the decoders alone in this process (samples/s of parse only);
3. starts seismo (fresh data dir, --no-collector) and POSTs every body from CLIENTS
   concurrent keep-alive clients to `/write`, `/api/v1/write`, and for reference the same
   samples as native JSON to `/api/v1/ingest`, timing durable samples/s (seismo replies
   only after the WAL fsync);
4. starts VictoriaMetrics and does the same to its `/write` and `/api/v1/write`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from ingest import (  # bench/ingest.py: processes, load, machine facts
    Data,
    LoadResult,
    Server,
    bench_labels,
    free_port,
    generate,
    machine,
    seismo_argv,
    seismo_body,
    send_all,
    split,
    vm_version,
)
from seismo.ingest import influx, remote_write

Part = tuple[int, int, int, int]


def line_body(data: Data, part: Part, measurement: str) -> bytes:
    s0, s1, p0, p1 = part
    lines = []
    for p in range(p0, p1):
        ts_ns = int(data.timestamps[p]) * 1_000_000
        values = data.values[s0:s1, p].tolist()
        lines.extend(f"{measurement},host=h{i},job=bench value={v!r} {ts_ns}"
                     for i, v in zip(range(s0, s1), values, strict=True))
    return ("\n".join(lines) + "\n").encode()


def rw_body(data: Data, part: Part, metric: str) -> bytes:
    s0, s1, p0, p1 = part
    ts = data.timestamps[p0:p1].tolist()
    return remote_write.encode([
        ({"__name__": metric, "host": f"h{i}", "job": "bench"},
         list(zip(ts, data.values[i, p0:p1].tolist(), strict=True)))
        for i in range(s0, s1)])


def accepted(resp: httpx.Response, sent: int) -> tuple[int, int]:
    return sent, 0  # 204: every sample was taken (a partial write is a 400, an error)


def decode_rate(bodies: list[bytes], counts: list[int], decode: Any) -> float:
    started = time.perf_counter()
    for body in bodies:
        decode(body)
    return sum(counts) / (time.perf_counter() - started)


def run(name: str, server: Server, loads: dict[str, tuple[str, list[bytes], str]],
        counts: list[int], clients: int) -> dict[str, Any]:
    out: dict[str, Any] = {"log": str(server.log_path)}
    try:
        server.start()
        for protocol, (path, bodies, content_type) in loads.items():
            load: LoadResult = send_all(server.base + path, bodies, counts, clients,
                                        content_type, accepted, server)
            out[protocol] = load
            print(f"  {name:16} {protocol:14} {load.rate:>12,.0f} samples/s   "
                  f"p50 {load.pct(50):6.1f} ms  p99 {load.pct(99):6.1f} ms  "
                  f"server CPU {load.server_cpu_s:5.1f} s  errors {len(load.errors)}",
                  flush=True)
            for error in load.errors[:3]:
                print(f"    ! {error}")
    finally:
        server.stop()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--series", type=int, default=10_000)
    p.add_argument("--points", type=int, default=60)
    p.add_argument("--batch", type=int, default=5000, help="samples per request")
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--vm", default="victoria-metrics", help="binary; missing = skip")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="seismo-bench-protocols-"))
    m = machine()
    print(f"seismo ingest protocols benchmark, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; "
          f"work dir {work}")
    print(f"machine: {m['cpus']} CPUs ({m['cpu_model']}), {m['ram_gib']} GiB RAM, "
          f"Python {m['python']}", flush=True)
    data = generate(args.series, args.points, args.seed)
    # Each request: `batch` distinct series x 1 point, as scrapers and agents send them.
    parts = split(data, min(args.batch, args.series), min(args.batch, args.series))
    counts = [(q[1] - q[0]) * (q[3] - q[2]) for q in parts]
    lp = [line_body(data, q, "bench_lp") for q in parts]
    rw = [rw_body(data, q, "bench_rw") for q in parts]
    print(f"data: {data.samples:,} samples, {len(parts)} requests of {counts[0]:,} samples; "
          f"line protocol {sum(map(len, lp)) / data.samples:.1f} B/sample, "
          f"remote write {sum(map(len, rw)) / data.samples:.1f} B/sample", flush=True)
    now = time.time_ns() // 1_000_000
    rate = decode_rate(lp, counts, lambda b: influx.parse(b, now_ms=now))
    print(f"  decode only      line protocol {rate:>12,.0f} samples/s")
    rate = decode_rate(rw, counts, lambda b: remote_write.decode(
        remote_write.decompress(b, 1 << 30)))
    print(f"  decode only      remote write  {rate:>12,.0f} samples/s", flush=True)
    loads = {"line protocol": ("/write", lp, "text/plain"),
             "remote write": ("/api/v1/write", rw, "application/x-protobuf")}
    port = free_port()
    seismo = Server("seismo", seismo_argv(port, work / "seismo-data"), port,
                    work / "seismo.log", "/api/v1/health")
    native = [seismo_body(data, q, "bench_json", bench_labels) for q in parts]
    run("seismo", seismo, {**loads, "JSON (native)": ("/api/v1/ingest", native,
                                                      "application/json")},
        counts, args.clients)
    binary = shutil.which(args.vm)
    if binary is None:
        print(f"  VictoriaMetrics skipped: {args.vm} not found")
        return 0
    port = free_port()
    vm = Server("victoria-metrics", [binary, f"-httpListenAddr=127.0.0.1:{port}",
                                     f"-storageDataPath={work / 'vm-data'}",
                                     "-retentionPeriod=100y"],
                port, work / "vm.log", "/health")
    print(f"  VictoriaMetrics {vm_version(binary)}")
    run("VictoriaMetrics", vm, {k: (path, bodies, ct) for k, (path, bodies, ct)
                                in loads.items()}, counts, args.clients)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

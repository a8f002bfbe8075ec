// One-hop and sidecar-pair benchmark, side by side with direct (product.md §8).
// Proxies pinned to core 0, upstream and load generator to core 1; closed loop with wrk, fixed rate
// (1000 req/s) with h2load for latency. Reports × direct, CPU µs per request (proxy processes'
// utime+stime / requests), RSS, and added p50/p99. Absolute numbers drift with host load; ratios
// from one run hold. Usage: node src/proxy/perf/bench.ts [seconds=5] [--json] [--h1-only] [--no-nginx]
// Runs each scenario with weft's HTTP/1.1 upstream pool ("h1") and with undici's Pool ("undici"),
// and nginx as the reference when /usr/sbin/nginx exists. BENCH_NODE_OPTIONS passes V8/Node flags
// to the proxy processes. Run from a build (dist/…/bench.js) for production-like memory: type
// stripping (amaro) adds ~35 MB of RSS to every process that loads .ts sources.

import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { createTestCa, sid } from "../testing/certs.ts";

const SECONDS = Number(process.argv[2] ?? 5);
const NODE = process.execPath;
const HERE = import.meta.dirname;
// Runs from the sources (.ts, type stripping) or from a build (.js): spawn siblings of the same kind.
const EXT = import.meta.url.endsWith(".ts") ? ".ts" : ".js";

function start(
  core: number,
  script: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(
    "taskset",
    ["-c", String(core), NODE, join(HERE, script.replace(/\.ts$/, EXT)), ...args],
    {
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, ...env },
    },
  );
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    createInterface({ input: child.stdout! }).once("line", (l) => resolve({ child, port: Number(l) }));
  });
}

function cpuTicks(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = f.slice(f.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]); // utime + stime
}

/** Resident memory (MB): total, and anonymous only (without the node binary's shared, file-backed pages). */
function rssMb(pid: number): { total: number; anon: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { total: kb("VmRSS") / 1024, anon: kb("RssAnon") / 1024 };
}

const TICK_US = 1e6 / Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim());

function wrk(port: number, seconds: number): { rps: number; requests: number } {
  const out = execFileSync("taskset", [
    "-c",
    "1",
    "wrk",
    "-t1",
    "-c50",
    `-d${seconds}s`,
    "-H",
    "Host: app",
    `http://127.0.0.1:${port}/`,
  ]).toString();
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0);
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
  if (/Non-2xx/.test(out)) throw new Error(`non-2xx responses:\n${out}`);
  return { rps, requests };
}

function fixedRate(port: number, seconds: number): { p50: number; p99: number } {
  const dir = mkdtempSync(join(tmpdir(), "weft-h2load-"));
  const log = join(dir, "log.tsv");
  execFileSync(
    "taskset",
    [
      "-c",
      "1",
      "h2load",
      "--h1",
      "-c1",
      "--rps",
      "1000",
      "-D",
      String(seconds),
      "-H",
      ":authority: app",
      "--log-file",
      log,
      `http://127.0.0.1:${port}/`,
    ],
    { stdio: "ignore" },
  );
  const lat = readFileSync(log, "utf8")
    .trim()
    .split("\n")
    .map((l) => Number(l.split("\t")[2]))
    .sort((a, b) => a - b);
  rmSync(dir, { recursive: true, force: true });
  return { p50: lat[Math.floor(lat.length * 0.5)], p99: lat[Math.floor(lat.length * 0.99)] };
}

interface Result {
  name: string;
  rps: number;
  ratio: number;
  cpuUsPerRequest?: number;
  /** "total/anonymous" MB, summed over the proxy processes. */
  rssIdle?: string;
  rssAt1000?: string;
  rssSaturated?: string;
  p50AddedUs?: number;
  p99AddedUs?: number;
}

async function measure(
  name: string,
  port: number,
  pids: number[],
  direct: { rps: number; p50: number; p99: number },
): Promise<Result> {
  const rss = () => {
    const all = pids.map(rssMb);
    const sum = (k: "total" | "anon") => Math.round(all.reduce((s, r) => s + r[k], 0));
    return `${sum("total")}/${sum("anon")}`;
  };
  const idle = rss();
  // Fixed rate first, on a fresh process: latency and memory as a sidecar mostly runs.
  const lat = fixedRate(port, Math.max(3, Math.floor(SECONDS / 2)));
  const at1000 = rss();
  wrk(port, 2); // warm-up
  const t0 = pids.reduce((s, p) => s + cpuTicks(p), 0);
  const { rps, requests } = wrk(port, SECONDS);
  const t1 = pids.reduce((s, p) => s + cpuTicks(p), 0);
  return {
    name,
    rps: Math.round(rps),
    ratio: Number((rps / direct.rps).toFixed(2)),
    cpuUsPerRequest: Number((((t1 - t0) * TICK_US) / requests).toFixed(1)),
    rssIdle: idle,
    rssAt1000: at1000,
    rssSaturated: rss(),
    p50AddedUs: lat.p50 - direct.p50,
    p99AddedUs: lat.p99 - direct.p99,
  };
}

const NGINX = "/usr/sbin/nginx";

/**
 * nginx (one worker on core 0) as the reference, in the same run: a plain hop, and an mTLS pair
 * (outbound server → inbound server → app). nginx cannot check a SPIFFE ID, so the pair verifies
 * the chain only on the inbound side; connections are pooled, so this costs it next to nothing.
 */
async function startNginx(upstreamPort: number, server: string, client: string) {
  const dir = mkdtempSync(join(tmpdir(), "weft-bench-nginx-"));
  const [hop, pairOut, pairIn] = [18_101, 18_102, 18_103];
  writeFileSync(
    join(dir, "nginx.conf"),
    `worker_processes 1; daemon off; error_log ${dir}/error.log; pid ${dir}/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off; keepalive_requests 1000000;
  upstream app { server 127.0.0.1:${upstreamPort}; keepalive 128; }
  upstream peer { server 127.0.0.1:${pairIn}; keepalive 128; }
  server { listen 127.0.0.1:${hop}; location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; } }
  server { listen 127.0.0.1:${pairOut}; location / {
    proxy_pass https://peer; proxy_http_version 1.1; proxy_set_header Connection "";
    proxy_ssl_certificate ${client}/chain.pem; proxy_ssl_certificate_key ${client}/key.pem; proxy_ssl_session_reuse on; } }
  server { listen 127.0.0.1:${pairIn} ssl; ssl_certificate ${server}/chain.pem; ssl_certificate_key ${server}/key.pem;
    ssl_client_certificate ${server}/bundle.pem; ssl_verify_client on;
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; } }
}
`,
  );
  const child = spawn("taskset", ["-c", "0", NGINX, "-p", dir, "-c", join(dir, "nginx.conf")], {
    stdio: "ignore",
  });
  await new Promise((r) => setTimeout(r, 500));
  const workers = execFileSync("pgrep", ["-P", String(child.pid)])
    .toString()
    .trim()
    .split("\n")
    .map(Number);
  return { child, hop, pair: pairOut, workers, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

async function main(): Promise<void> {
  const ca = await createTestCa();
  const certDir = (id: string) => {
    const d = mkdtempSync(join(tmpdir(), "weft-bench-cert-"));
    return ca.material(id).then((m) => {
      writeFileSync(join(d, "key.pem"), m.keyPem);
      writeFileSync(join(d, "chain.pem"), m.certChainPem);
      writeFileSync(join(d, "bundle.pem"), m.trustBundlePem);
      writeFileSync(join(d, "id.txt"), m.spiffeId);
      return d;
    });
  };
  const children: ChildProcess[] = [];
  try {
    const up = await start(1, "upstream-process.ts", ["0"]);
    children.push(up.child);
    const directRun = () => {
      wrk(up.port, 2);
      const d = wrk(up.port, SECONDS);
      const l = fixedRate(up.port, Math.max(3, Math.floor(SECONDS / 2)));
      return { rps: d.rps, ...l };
    };
    const results: Result[] = [];
    const nodeOptions = process.env.BENCH_NODE_OPTIONS ?? "";

    const serverDir = await certDir(sid("app"));
    const clientDir = await certDir(sid("web"));
    const transports = process.argv.includes("--h1-only") ? ["h1"] : ["h1", "undici"];
    for (const transport of transports) {
      const env = { WEFT_TRANSPORT: transport, NODE_OPTIONS: nodeOptions };
      let direct = directRun();
      results.push({ name: "direct", rps: Math.round(direct.rps), ratio: 1 });
      const out = await start(0, "proxy-process.ts", ["outbound", String(up.port)], env);
      children.push(out.child);
      results.push(await measure(`one hop, plaintext [${transport}]`, out.port, [out.child.pid!], direct));
      out.child.kill();

      direct = directRun();
      const inb = await start(0, "proxy-process.ts", ["inbound", String(up.port), serverDir], env);
      children.push(inb.child);
      const pairOut = await start(
        0,
        "proxy-process.ts",
        ["outbound", String(inb.port), sid("app"), clientDir],
        env,
      );
      children.push(pairOut.child);
      results.push(
        await measure(
          `pair, mTLS [${transport}]`,
          pairOut.port,
          [pairOut.child.pid!, inb.child.pid!],
          direct,
        ),
      );
      inb.child.kill();
      pairOut.child.kill();
    }
    if (existsSync(NGINX) && !process.argv.includes("--no-nginx")) {
      const direct = directRun();
      const nginx = await startNginx(up.port, serverDir, clientDir);
      children.push(nginx.child);
      results.push(await measure("one hop, plaintext [nginx]", nginx.hop, nginx.workers, direct));
      results.push(await measure("pair, mTLS [nginx]", nginx.pair, nginx.workers, direct));
      nginx.child.kill();
      nginx.cleanup();
    }

    if (process.argv.includes("--json")) console.log(JSON.stringify(results, null, 2));
    else console.table(results);
  } finally {
    for (const c of children) c.kill();
    await ca.cleanup();
  }
}

await main();

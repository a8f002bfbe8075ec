// The config API (HTTPS, port 15000): resources, join tokens, certificate signing and the control
// plane's metrics (GET /metrics, Prometheus text). Every route but /healthz needs a credential: the admin bearer token, or — for certificate signing only — a join
// token or the caller's current mesh certificate. The caller is known from the headers and the TLS
// session before a byte of the body is read; only then is the body read, within the route's limits
// (body.ts). Certificate signing is admitted through a fair, bounded, rate-limited queue per identity
// (signing-limits.ts, admission.ts): under a start storm a request waits its turn or is answered 503
// with Retry-After — never left to time out. Request headers are waited for in time the control plane
// was responsive (header-deadline.ts), so its own busy spells do not reset waiting clients.

import { createHash, timingSafeEqual } from "node:crypto";
import { createServer, type Server } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { TLSSocket } from "node:tls";
import type { CertificateAuthority } from "../../pki/ca.ts";
import { isPkiError } from "../../pki/errors.ts";
import { parseSpiffeId, peerSpiffeId, spiffeId } from "../../pki/spiffe.ts";
import type { TokenIssuer } from "../../pki/tokens.ts";
import { systemClock, type Clock, type Store } from "../../store/store.ts";
import { LoopLag } from "../loop-lag.ts";
import type { MeshStateCache } from "../mesh-state.ts";
import {
  BodyReader,
  DEFAULT_BODY_DEADLINE_MS,
  DEFAULT_MAX_CONCURRENT_BODIES,
  type BodyLimits,
} from "./body.ts";
import { ApiError, MAX_JSON_DEPTH, parseJson, requireString, sendError, sendJson } from "./http.ts";
import { applyManifests, deleteResource, parseKind, type ManifestFile } from "./resources.ts";
import { HeaderDeadline } from "./header-deadline.ts";
import { overloadedError, signingAdmission, type SigningLimits } from "./signing-limits.ts";
import { parseTokenRequest } from "./token-request.ts";
import { withRouteStatus } from "../compile/route-status.ts";
import { PROMETHEUS_CONTENT_TYPE } from "../metrics.ts";
import type { AnyResource } from "../../model/resources.ts";

/** What each route reads at most. A CSR is under 16 KiB (csr.ts); an apply carries whole files. */
export const BODY_LIMITS = {
  certificates: { maxBytes: 64 * 1024, maxJsonDepth: MAX_JSON_DEPTH },
  tokens: { maxBytes: 4 * 1024, maxJsonDepth: MAX_JSON_DEPTH },
  apply: { maxBytes: 8 * 1024 * 1024 },
} satisfies Record<string, BodyLimits>;

export interface ApiDeps {
  store: Store;
  state: MeshStateCache;
  ca: CertificateAuthority;
  tokens: TokenIssuer;
  adminToken: string;
  tls: { keyPem: string; certPem: string };
  trustDomain: () => string;
  /** Lifetime of workload certificates (seconds); default 24 h. */
  certTtlSeconds?: number;
  /** Time allowed to receive a request body (ms); default 10 s. */
  bodyDeadlineMs?: number;
  /** Request bodies read at once; default 32. */
  maxConcurrentBodies?: number;
  /** Certificate signing's admission and rate limits (defaults in signing-limits.ts). */
  signing?: Partial<SigningLimits>;
  /** Time for admission and the header deadline; tests pass a manual clock. */
  clock?: Clock;
  /** The control plane's loop stalls (shared with the config stream); one is started if absent. */
  lag?: { stalledMs(): number };
  /** Time a client has to send a request's headers, counted while the control plane is responsive (ms). */
  headersTimeoutMs?: number;
  /** The control plane's metrics as Prometheus text (GET /metrics, admin only); absent: 404. */
  metrics?: () => string;
}

/** What the config API exposes besides its server: admission counters for tests and diagnostics. */
export interface ApiServer extends Server {
  signing: ReturnType<typeof signingAdmission>;
  headerDeadline: HeaderDeadline;
  /** Certificates signed since start. */
  stats: { signed: number };
}

type Caller = { kind: "admin" } | { kind: "workload"; namespace: string; service: string } | { kind: "none" };

export function createApiServer(deps: ApiDeps): ApiServer {
  const adminHash = sha256(deps.adminToken);
  const server = createServer(
    {
      key: deps.tls.keyPem,
      cert: deps.tls.certPem,
      ca: deps.ca.trustBundlePem,
      requestCert: true, // a proxy may renew with its current mesh certificate
      rejectUnauthorized: false, // ... but a certificate is optional here; bearer tokens are checked below
      minVersion: "TLSv1.2",
      connectionsCheckingInterval: 1_000, // so headersTimeout is enforced within a second of its value
    },
    (req, res) => {
      handle(req, res).catch((err) => sendError(res, err));
    },
  );
  // A client that sends `Expect: 100-continue` is told to go on only once its body is wanted.
  server.on("checkContinue", (req, res) => handle(req, res).catch((err) => sendError(res, err)));
  // Headers are waited for by the lag-aware deadline below, not by node's wall-clock check.
  server.headersTimeout = 0;
  server.requestTimeout = 120_000;
  const clock = deps.clock ?? systemClock;
  const ownLag = deps.lag ? undefined : new LoopLag({ clock }).start();
  const lag = deps.lag ?? ownLag!;
  const headerDeadline = new HeaderDeadline(server, {
    timeoutMs: deps.headersTimeoutMs ?? 10_000,
    lag,
    clock,
  });
  server.on("close", () => {
    headerDeadline.stop();
    ownLag?.stop();
  });
  const signing = signingAdmission(deps.signing, clock);
  const stats = { signed: 0 };
  const bodies = new BodyReader({
    deadlineMs: deps.bodyDeadlineMs ?? DEFAULT_BODY_DEADLINE_MS,
    maxConcurrent: deps.maxConcurrentBodies ?? DEFAULT_MAX_CONCURRENT_BODIES,
    // Most bodies are CSRs: a caller refused here books its turn with signing's refused crowd.
    retryAfterMs: () => signing.retryAfterMs(),
  });
  const readJsonBody = async (req: IncomingMessage, res: ServerResponse, limits: BodyLimits) =>
    parseJson<Record<string, unknown>>(await bodies.read(req, res, limits));

  function authenticate(req: IncomingMessage): Caller {
    const auth = req.headers.authorization;
    if (auth?.startsWith("Bearer ")) {
      const token = auth.slice(7).trim();
      if (timingSafeEqual(sha256(token), adminHash)) return { kind: "admin" };
      try {
        const claims = deps.tokens.verify(token);
        return { kind: "workload", namespace: claims.namespace, service: claims.service };
      } catch (err) {
        if (isPkiError(err))
          throw new ApiError(401, "unauthenticated", `credential rejected: ${err.message}`);
        throw err;
      }
    }
    const socket = req.socket as TLSSocket;
    if (socket.authorized) {
      const parts = parseSpiffeId(peerSpiffeId(socket.getPeerCertificate()) ?? "");
      if (parts) return { kind: "workload", namespace: parts.namespace, service: parts.serviceAccount };
    }
    return { kind: "none" };
  }

  function requireAdmin(caller: Caller): void {
    if (caller.kind === "none")
      throw new ApiError(
        401,
        "unauthenticated",
        "missing credential: send `Authorization: Bearer <admin token>`",
      );
    if (caller.kind !== "admin") throw new ApiError(403, "forbidden", "this API needs the admin credential");
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "https://localhost");
    const parts = url.pathname.split("/").filter(Boolean);
    if (url.pathname === "/healthz")
      return sendJson(res, 200, { status: "ok", revision: deps.state.revision });
    const caller = authenticate(req);
    if (url.pathname === "/metrics" && deps.metrics) {
      // What the control plane is doing (metrics.ts): no secrets in it, but not for anyone to read.
      requireAdmin(caller);
      if (req.method !== "GET" && req.method !== "HEAD")
        throw new ApiError(405, "method_not_allowed", "/metrics answers GET only");
      const text = deps.metrics();
      res.writeHead(200, {
        "content-type": PROMETHEUS_CONTENT_TYPE,
        "content-length": Buffer.byteLength(text),
      });
      res.end(req.method === "HEAD" ? undefined : text);
      return;
    }
    if (parts[0] !== "api" || parts[1] !== "v1")
      throw new ApiError(404, "not_found", `no such API: ${url.pathname}`);
    const [resource, ...rest] = parts.slice(2);
    const method = req.method ?? "GET";

    if (resource === "certificates" && method === "POST") return signCertificate(req, res, caller);
    if (resource === "identity" && method === "GET") {
      // A proxy learns which SPIFFE ID its join token entitles it to before it writes its CSR.
      if (caller.kind !== "workload")
        throw new ApiError(401, "unauthenticated", "needs a join token or a mesh certificate");
      return sendJson(res, 200, {
        identity: spiffeId(deps.trustDomain(), caller.namespace, caller.service),
        ...caller,
      });
    }
    requireAdmin(caller);
    if (resource === "apply" && method === "POST") {
      // JSON {files: [{name, content}]} applies several files at once; any other body is one manifest.
      const json = (req.headers["content-type"] ?? "").startsWith("application/json");
      const limits = json ? { ...BODY_LIMITS.apply, maxJsonDepth: MAX_JSON_DEPTH } : BODY_LIMITS.apply;
      const text = await bodies.read(req, res, limits);
      const files: ManifestFile[] = json
        ? parseFiles(text)
        : [{ name: url.searchParams.get("file") || "<stdin>", content: text }];
      return sendJson(res, 200, await applyManifests(deps.store, files));
    }
    if (resource === "resources" && rest.length >= 1) {
      const kind = parseKind(rest[0]);
      if (method === "GET" && rest.length === 1) {
        const ns = url.searchParams.get("namespace") ?? undefined;
        const items = deps.state.list(kind, ns).map((r) => withStatus(deps.state, r));
        return sendJson(res, 200, { items, revision: deps.state.revision });
      }
      if (rest.length === 3) {
        const [, ns, name] = rest;
        if (method === "GET") {
          const found = deps.state.list(kind, ns).find((r) => r.metadata.name === name);
          if (!found) throw new ApiError(404, "not_found", `${kind} ${ns}/${name} not found`);
          return sendJson(res, 200, withStatus(deps.state, found));
        }
        if (method === "DELETE")
          return sendJson(res, 200, { revision: await deleteResource(deps.store, kind, ns, name) });
      }
    }
    if (resource === "tokens" && method === "POST") {
      const { service, namespace, ttlSeconds } = parseTokenRequest(
        await readJsonBody(req, res, BODY_LIMITS.tokens),
      );
      const token = deps.tokens.create({ service, namespace, ttlSeconds });
      return sendJson(res, 200, {
        token,
        service,
        namespace,
        identity: spiffeId(deps.trustDomain(), namespace, service),
      });
    }
    if (resource === "trust-bundle" && method === "GET")
      return sendJson(res, 200, { trustBundle: deps.ca.trustBundlePem });
    throw new ApiError(404, "not_found", `no such API: ${method} ${url.pathname}`);
  }

  async function signCertificate(req: IncomingMessage, res: ServerResponse, caller: Caller): Promise<void> {
    if (caller.kind === "none")
      throw new ApiError(
        401,
        "unauthenticated",
        "certificate signing needs a join token (`Authorization: Bearer <token>`) or a valid mesh certificate",
      );
    // The body (a CSR: small, capped, read under body.ts's own limits) first, so that a slot is only
    // ever held by signing itself; then the caller's turn comes per identity. A caller that hangs up
    // leaves the queue.
    const body = await readJsonBody(req, res, BODY_LIMITS.certificates);
    const key = caller.kind === "workload" ? `${caller.namespace}/${caller.service}` : "admin";
    const gone = new AbortController();
    res.once("close", () => gone.abort(new Error("client went away")));
    await signing
      .run(key, () => sign(res, caller, body), gone.signal)
      .catch((err: unknown) => {
        throw overloadedError(err);
      });
  }

  async function sign(res: ServerResponse, caller: Caller, body: Record<string, unknown>): Promise<void> {
    const csr = requireString(body, "csr");
    let namespace: string;
    let service: string;
    if (caller.kind === "workload") {
      ({ namespace, service } = caller);
    } else {
      ({ service, namespace } = parseTokenRequest({ service: body.service, namespace: body.namespace }));
    }
    const id = spiffeId(deps.trustDomain(), namespace, service);
    try {
      const issued = await deps.ca.signWorkloadCsr(csr, { spiffeId: id, ttlSeconds: deps.certTtlSeconds });
      stats.signed++;
      sendJson(res, 200, {
        identity: id,
        certChain: issued.chainPem,
        trustBundle: deps.ca.trustBundlePem,
        notBefore: issued.notBefore.toISOString(),
        notAfter: issued.notAfter.toISOString(),
        serial: issued.serial,
      });
    } catch (err) {
      if (isPkiError(err)) throw new ApiError(403, err.code, err.message);
      throw err;
    }
  }

  return Object.assign(server, { signing, headerDeadline, stats });
}

function parseFiles(text: string): ManifestFile[] {
  const files = parseJson<{ files?: unknown } | null>(text)?.files;
  if (
    !Array.isArray(files) ||
    files.some((f) => typeof f?.name !== "string" || typeof f?.content !== "string")
  ) {
    throw new ApiError(400, "bad_request", `expected {"files": [{"name": string, "content": string}, ...]}`);
  }
  return files as ManifestFile[];
}

function sha256(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}

/** Routes are read with their status (Accepted, ResolvedRefs per parent), computed from the current config. */
function withStatus(state: MeshStateCache, r: AnyResource): AnyResource {
  if (r.kind !== "HTTPRoute" && r.kind !== "GRPCRoute") return r;
  return withRouteStatus(r, state.prepared().refs);
}

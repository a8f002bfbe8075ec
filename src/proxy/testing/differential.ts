// The differential check of the HTTP edge: every request the app received must be one that the strict
// reference parser (strict-http.ts) produces from the bytes the client sent — same method, target
// (origin-form), Host, end-to-end headers in order, body — and never more requests than it found.
// Headers the proxy manages (PROXY_MANAGED, and what Connection names) are not compared.

import { endToEnd, originForm, parseStrict, type StrictParse, type StrictRequest } from "./strict-http.ts";

/** What a conforming proxy forwards for one strictly parsed request. */
export interface ExpectedRequest {
  method: string;
  path: string;
  host: string;
  headers: [string, string][];
  body: Buffer;
  trailers: [string, string][];
}

export function expectedOf(r: StrictRequest): ExpectedRequest {
  const { path, authority } = originForm(r.target);
  const hostField = r.headers.find(([n]) => n.toLowerCase() === "host")?.[1] ?? "";
  return {
    method: r.method,
    path,
    host: authority ?? hostField,
    headers: endToEnd(r.headers),
    body: r.body,
    trailers: r.trailers,
  };
}

/** What the app received, in the same shape (its framing and the proxy's own headers left out). */
export function receivedOf(r: StrictRequest): ExpectedRequest {
  const hosts = r.headers.filter(([n]) => n.toLowerCase() === "host");
  return {
    method: r.method,
    path: r.target,
    // Two Host fields at the app would be a finding of their own: keep them visible.
    host: hosts.map(([, v]) => v).join(" | "),
    headers: endToEnd(r.headers.filter(([n]) => n.toLowerCase() !== "connection")),
    body: r.body,
    trailers: r.trailers,
  };
}

function same(a: ExpectedRequest, b: ExpectedRequest): boolean {
  return (
    a.method === b.method &&
    a.path === b.path &&
    a.host === b.host &&
    a.body.equals(b.body) &&
    a.headers.length === b.headers.length &&
    a.headers.every(([n, v], i) => n === b.headers[i][0] && v === b.headers[i][1]) &&
    b.trailers.every(([n, v]) => a.trailers.some(([m, w]) => m === n && w === v))
  );
}

export function describe(r: ExpectedRequest): string {
  const h = r.headers.map(([n, v]) => `${n}: ${v}`).join(" | ");
  return `${r.method} ${r.path} host=${JSON.stringify(r.host)} [${h}] body=${JSON.stringify(r.body.toString("latin1").slice(0, 80))}`;
}

/**
 * Violations of the invariant for one input: none when every request the app saw is one the strict
 * parser found (each at most once), and the proxy sent the app nothing malformed. `tolerated` is set
 * when the requests match only once chunk extensions are read leniently (llhttp accepts some that
 * RFC 9112's grammar does not, e.g. an empty name): the sizes agree and the proxy drops extensions
 * when it re-frames the body, so the app sees the same request — counted and reported, not failed.
 */
export function differentialViolations(
  input: Buffer,
  seen: StrictRequest[],
  malformed: string[],
): { violations: string[]; tolerated?: string } {
  const violations = compare(parseStrict(input), seen, malformed);
  if (violations.length === 0) return { violations };
  const lenient = parseStrict(input, true);
  if (compare(lenient, seen, malformed).length === 0) return { violations: [], tolerated: violations[0] };
  return { violations };
}

function compare(parse: StrictParse, seen: StrictRequest[], malformed: string[]): string[] {
  const out: string[] = [];
  for (const m of malformed) out.push(`the app received bytes a strict server refuses: ${m}`);
  const strict = parse.requests.map(expectedOf);
  const used = new Array<boolean>(strict.length).fill(false);
  for (const s of seen) {
    const got = receivedOf(s);
    const i = strict.findIndex((e, k) => !used[k] && same(e, got));
    if (i === -1) {
      out.push(
        `the app saw a request the strict parser did not produce: ${describe(got)}; strict found ${strict.length}: ${strict.map(describe).join(" ;; ") || "none"}`,
      );
    } else used[i] = true;
  }
  return out;
}

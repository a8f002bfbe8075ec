// A small, strict HTTP/1.1 request parser (RFC 9112) for tests only: the reference that the
// differential fuzzer and the smuggling catalogue compare the proxy against. It accepts exactly
// what the RFC allows a server to accept and refuses everything ambiguous — bare LF or CR, obs-fold,
// whitespace before a colon, controls in names or values, Content-Length that is not one run of
// digits, duplicate Content-Length, Transfer-Encoding other than a lone "chunked", both together,
// Transfer-Encoding in HTTP/1.0, a missing or repeated Host in HTTP/1.1. Deliberately simple and
// slow; never used by the proxy.

export interface StrictRequest {
  method: string;
  /** As sent: origin-form, absolute-form or "*". */
  target: string;
  version: "1.0" | "1.1";
  /** [name, value] in order, names as sent, values without surrounding whitespace. */
  headers: [string, string][];
  body: Buffer;
  /** Trailer fields of a chunked body. */
  trailers: [string, string][];
}

export interface StrictParse {
  requests: StrictRequest[];
  /** Why parsing stopped before the end of the input, if it did. */
  error?: string;
  /** The input ended inside a request (it is not counted). */
  incomplete?: boolean;
  /** Bytes consumed by the complete requests. */
  consumed: number;
}

const TCHAR = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// field-vchar / SP / HTAB / obs-text; no controls.
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const TARGET = /^[\x21-\x7e\x80-\xff]+$/;

class Incomplete extends Error {}
class Refused extends Error {}

class Cursor {
  pos = 0;
  readonly s: string;
  constructor(s: string) {
    this.s = s;
  }
  /** One CRLF-terminated line; a bare CR or LF anywhere in it is refused. */
  line(): string {
    const lf = this.s.indexOf("\n", this.pos);
    if (lf === -1) {
      if (this.s.indexOf("\r", this.pos) !== -1 && this.s.indexOf("\r", this.pos) < this.s.length - 1)
        throw new Refused("bare CR");
      throw new Incomplete();
    }
    if (lf === this.pos || this.s.charCodeAt(lf - 1) !== 13) throw new Refused("bare LF");
    const text = this.s.slice(this.pos, lf - 1);
    if (text.includes("\r")) throw new Refused("bare CR");
    this.pos = lf + 1;
    return text;
  }
  take(n: number): string {
    if (this.pos + n > this.s.length) throw new Incomplete();
    const out = this.s.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
}

function fieldLines(c: Cursor): [string, string][] {
  const out: [string, string][] = [];
  for (;;) {
    const line = c.line();
    if (line === "") return out;
    if (line[0] === " " || line[0] === "\t") throw new Refused("obs-fold");
    const colon = line.indexOf(":");
    if (colon <= 0) throw new Refused("field line without a name");
    const name = line.slice(0, colon);
    if (!TCHAR.test(name)) throw new Refused(`bad field name ${JSON.stringify(name)}`);
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, "");
    if (!FIELD_VALUE.test(value)) throw new Refused(`bad value of ${name}`);
    out.push([name, value]);
  }
}

function all(headers: [string, string][], lower: string): string[] {
  return headers.filter(([n]) => n.toLowerCase() === lower).map(([, v]) => v);
}

/**
 * A chunk line with any extension text after the size: what llhttp accepts (e.g. `5;;a=b`, an empty
 * extension name). Only for the differential check's second look (differential.ts): the proxy drops
 * chunk extensions and re-frames the body, so where the two parsers agree on the size, a lenient
 * extension changes nothing the app sees.
 */
const LENIENT_CHUNK_LINE = /^([0-9A-Fa-f]+)(?:[ \t]*;[^\r\n\0]*)?$/;

function chunkedBody(c: Cursor, lenient: boolean): { body: Buffer; trailers: [string, string][] } {
  const parts: string[] = [];
  for (;;) {
    const line = c.line();
    const m = lenient
      ? LENIENT_CHUNK_LINE.exec(line)
      : /^([0-9A-Fa-f]+)((?:[ \t]*;[ \t]*[!#$%&'*+\-.^_`|~0-9A-Za-z]+(?:[ \t]*=[ \t]*(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+|"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"))?)*)$/.exec(
          line,
        );
    if (m === null) throw new Refused(`bad chunk line ${JSON.stringify(line.slice(0, 40))}`);
    if (m[1].replace(/^0+/, "").length > 12) throw new Refused("chunk size too large");
    const size = parseInt(m[1], 16);
    if (size === 0) return { body: Buffer.from(parts.join(""), "latin1"), trailers: fieldLines(c) };
    parts.push(c.take(size));
    if (c.line() !== "") throw new Refused("chunk data longer than its size");
  }
}

function oneRequest(c: Cursor, lenientChunkExtensions: boolean): StrictRequest {
  // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request-line. llhttp
  // also skips stray bare CR and LF there; that changes no boundary, so the reference allows it too.
  while (c.pos < c.s.length && (c.s[c.pos] === "\r" || c.s[c.pos] === "\n")) c.pos++;
  if (c.pos >= c.s.length) throw new Incomplete();
  const line = c.line();
  // §3: a recipient MAY parse on whitespace-delimited words (llhttp does, for runs of SP).
  const m = /^([^ ]+) +([^ ]+) +HTTP\/(\d)\.(\d)$/.exec(line);
  if (m === null) throw new Refused(`bad request line ${JSON.stringify(line.slice(0, 60))}`);
  const [, method, target, major, minor] = m;
  if (!TCHAR.test(method)) throw new Refused("bad method");
  if (!TARGET.test(target)) throw new Refused("bad target");
  if (major !== "1" || (minor !== "0" && minor !== "1")) throw new Refused(`HTTP/${major}.${minor}`);
  if (method === "CONNECT") throw new Refused("CONNECT (a tunnel, not a request)");
  if (!(target[0] === "/" || /^http:\/\/[^/?#@]+/i.test(target) || (target === "*" && method === "OPTIONS")))
    throw new Refused("bad target form");
  const version = minor === "1" ? "1.1" : "1.0";
  const headers = fieldLines(c);
  const hosts = all(headers, "host");
  if (hosts.length > 1) throw new Refused("two Host fields");
  if (version === "1.1" && (hosts.length === 0 || (hosts[0] === "" && target[0] === "/")))
    throw new Refused("missing Host");
  const te = all(headers, "transfer-encoding");
  const cl = all(headers, "content-length");
  if (te.length > 0) {
    if (cl.length > 0) throw new Refused("Content-Length with Transfer-Encoding");
    if (version === "1.0") throw new Refused("Transfer-Encoding in HTTP/1.0");
    if (te.length > 1 || te[0].toLowerCase() !== "chunked")
      throw new Refused("Transfer-Encoding not chunked");
    const { body, trailers } = chunkedBody(c, lenientChunkExtensions);
    return { method, target, version, headers, body, trailers };
  }
  if (cl.length > 1) throw new Refused("two Content-Length fields");
  let length = 0;
  if (cl.length === 1) {
    if (!/^\d{1,15}$/.test(cl[0])) throw new Refused(`bad Content-Length ${JSON.stringify(cl[0])}`);
    length = Number(cl[0]);
  }
  const body = Buffer.from(c.take(length), "latin1");
  return { method, target, version, headers, body, trailers: [] };
}

/** Parses as many complete requests as `input` holds; stops at the first refusal. */
export function parseStrict(input: Buffer, lenientChunkExtensions = false): StrictParse {
  const c = new Cursor(input.toString("latin1"));
  const requests: StrictRequest[] = [];
  let consumed = 0;
  while (c.pos < c.s.length) {
    try {
      requests.push(oneRequest(c, lenientChunkExtensions));
      consumed = c.pos;
    } catch (err) {
      if (err instanceof Incomplete) return { requests, incomplete: true, consumed };
      if (err instanceof Refused) return { requests, error: err.message, consumed };
      throw err;
    }
  }
  return { requests, consumed };
}

/** The origin-form target and authority a proxy forwards for `target` (absolute-form → Host). */
export function originForm(target: string): { path: string; authority: string | undefined } {
  const m = /^http:\/\/([^/?#]*)(.*)$/i.exec(target);
  if (m === null) return { path: target, authority: undefined };
  const rest = m[2];
  return { path: rest === "" ? "/" : rest[0] === "?" ? `/${rest}` : rest, authority: m[1] };
}

/**
 * Headers the proxy manages itself: never compared as end-to-end (it removes, rebuilds or adds them,
 * see docs/proxy.md). Content-Length and Transfer-Encoding are framing; the bodies are compared.
 */
export const PROXY_MANAGED = new Set([
  "host",
  "content-length",
  "transfer-encoding",
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authorization",
  "te",
  "trailer",
  "upgrade",
  "expect",
  "x-forwarded-for",
  "x-forwarded-proto",
  "x-forwarded-client-cert",
  "x-request-id",
]);

/** The end-to-end headers a conforming proxy forwards: minus PROXY_MANAGED and what Connection names. */
export function endToEnd(headers: [string, string][]): [string, string][] {
  const named = new Set<string>();
  for (const v of all(headers, "connection")) for (const t of v.split(",")) named.add(t.trim().toLowerCase());
  return headers.filter(([n]) => !PROXY_MANAGED.has(n.toLowerCase()) && !named.has(n.toLowerCase()));
}

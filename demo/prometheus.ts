// A small parser for the Prometheus text exposition format (version 0.0.4), enough to read a weft
// proxy's /metrics: `# HELP` / `# TYPE` comments, samples `name{label="value",...} value [timestamp]`,
// escaped label values (\\, \", \n) and the special values NaN, +Inf, -Inf.

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export class ParseError extends Error {
  readonly line: number;
  constructor(line: number, message: string) {
    super(`metrics line ${line}: ${message}`);
    this.line = line;
  }
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;

/** Every sample in `text`, in order. Comments and blank lines are skipped; a malformed line throws. */
export function parsePrometheusText(text: string): Sample[] {
  const out: Sample[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === "" || line.startsWith("#")) continue;
    out.push(parseSample(line, i + 1));
  }
  return out;
}

function parseSample(line: string, lineNo: number): Sample {
  const m = NAME.exec(line);
  if (!m) throw new ParseError(lineNo, `expected a metric name, got "${line.slice(0, 40)}"`);
  const name = m[0];
  let pos = name.length;
  let labels: Record<string, string> = {};
  if (line[pos] === "{") {
    const parsed = parseLabels(line, pos + 1, lineNo);
    labels = parsed.labels;
    pos = parsed.end;
  }
  const rest = line.slice(pos).trim().split(/\s+/);
  if (rest.length < 1 || rest[0] === "" || rest.length > 2) {
    throw new ParseError(lineNo, `expected "value [timestamp]" after ${name}`);
  }
  const value = parseValue(rest[0]);
  if (value === undefined) throw new ParseError(lineNo, `"${rest[0]}" is not a number`);
  return { name, labels, value };
}

/** Parses `a="x",b="y"}` starting just after `{`; returns the labels and the index after `}`. */
function parseLabels(
  line: string,
  start: number,
  lineNo: number,
): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {};
  let pos = start;
  for (;;) {
    while (line[pos] === " ") pos++;
    if (line[pos] === "}") return { labels, end: pos + 1 };
    const m = LABEL_NAME.exec(line.slice(pos));
    if (!m) throw new ParseError(lineNo, `expected a label name at column ${pos + 1}`);
    pos += m[0].length;
    while (line[pos] === " ") pos++;
    if (line[pos] !== "=" || line[pos + 1] !== '"') {
      throw new ParseError(lineNo, `expected ="..." after label ${m[0]}`);
    }
    pos += 2;
    let value = "";
    for (;;) {
      const c = line[pos];
      if (c === undefined) throw new ParseError(lineNo, `unterminated value of label ${m[0]}`);
      pos++;
      if (c === '"') break;
      if (c === "\\") {
        const e = line[pos++];
        value += e === "n" ? "\n" : e === "\\" ? "\\" : e === '"' ? '"' : `\\${e ?? ""}`;
      } else value += c;
    }
    labels[m[0]] = value;
    while (line[pos] === " ") pos++;
    if (line[pos] === ",") pos++;
    else if (line[pos] !== "}") throw new ParseError(lineNo, `expected , or } after label ${m[0]}`);
  }
}

function parseValue(s: string): number | undefined {
  if (s === "NaN") return NaN;
  if (s === "+Inf" || s === "Inf") return Infinity;
  if (s === "-Inf") return -Infinity;
  const n = Number(s);
  return Number.isNaN(n) ? undefined : n;
}

/** Sum of the samples named `name` whose labels include every pair in `match`. */
export function sumSamples(samples: Sample[], name: string, match: Record<string, string> = {}): number {
  let total = 0;
  for (const s of samples) if (s.name === name && matches(s.labels, match)) total += s.value;
  return total;
}

export function matches(labels: Record<string, string>, match: Record<string, string>): boolean {
  for (const k in match) if (labels[k] !== match[k]) return false;
  return true;
}

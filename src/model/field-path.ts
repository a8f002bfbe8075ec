// Field paths: how a violation names the field it is about, and how the parser finds that field's node.
//
// Written form, as kubectl and kuma print it: `spec.rules[0].backendRefs[1].weight`. Keys that are not
// plain identifiers (label keys such as `weft.dev/service`) are quoted: `metadata.labels["weft.dev/service"]`.

export type PathSegment = string | number;
export type FieldPath = readonly PathSegment[];

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$-]*$/;

export function formatPath(path: FieldPath): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else if (IDENT.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/**
 * The inverse of formatPath. Throws on malformed input: paths are written by code, not users, so a bad
 * one is a bug.
 */
export function parsePath(text: string): PathSegment[] {
  const out: PathSegment[] = [];
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (ch === ".") {
      if (i === 0 || i === text.length - 1) throw new Error(`bad field path ${JSON.stringify(text)}`);
      i++;
    } else if (ch === "[") {
      const close = closingBracket(text, i);
      const inner = text.slice(i + 1, close);
      if (/^\d+$/.test(inner)) out.push(Number(inner));
      else if (inner.startsWith('"')) out.push(JSON.parse(inner) as string);
      else throw new Error(`bad field path ${JSON.stringify(text)}`);
      i = close + 1;
    } else {
      let j = i;
      while (j < text.length && text[j] !== "." && text[j] !== "[") j++;
      out.push(text.slice(i, j));
      i = j;
    }
  }
  return out;
}

function closingBracket(text: string, open: number): number {
  let inString = false;
  for (let i = open + 1; i < text.length; i++) {
    const ch = text[i];
    if (inString && ch === "\\") i++;
    else if (ch === '"') inString = !inString;
    else if (ch === "]" && !inString) return i;
  }
  throw new Error(`bad field path ${JSON.stringify(text)}: unclosed [`);
}

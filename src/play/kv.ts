// `-e "a=1 b='two words'"` as Ansible's parse_kv reads it (parsing/splitter.py): split on
// whitespace outside quotes and outside {{ }} / {% %} / {# #}, each piece key=value, a
// value wrapped in matching quotes unquoted. Ansible would keep a piece without "=" as
// `_raw_params` and drop it from the variables; here an argument that does not split into
// key=value pieces only keeps the old reading (everything after the first "=" is the
// value), so `-e "msg=hello world"` still sets msg to "hello world".

const KEY = /^[A-Za-z_]\w*$/

// One piece: quoted strings, Jinja blocks and other non-space characters, run together.
const PIECE = /(?:'[^']*'|"(?:\\.|[^"\\])*"|\{\{[\s\S]*?\}\}|\{%[\s\S]*?%\}|\{#[\s\S]*?#\}|[^\s'"{]|\{(?![{%#]))+/y

/** Whitespace-separated pieces, quotes and Jinja blocks kept whole; undefined when a quote or block is left open. */
export function splitArgs(s: string): string[] | undefined {
  const out: string[] = []
  let i = 0
  while (i < s.length) {
    if (/\s/.test(s[i])) {
      i++
      continue
    }
    PIECE.lastIndex = i
    const m = PIECE.exec(s)
    if (!m) return undefined
    out.push(m[0])
    i = PIECE.lastIndex
  }
  return out
}

/** A value written 'like this' or "like this" loses its quotes (Ansible's unquote). */
export function unquote(v: string): string {
  if (v.length >= 2 && (v[0] === '"' || v[0] === "'") && v.at(-1) === v[0]) {
    const inner = v.slice(1, -1)
    return v[0] === '"' ? inner.replace(/\\(["\\])/g, '$1') : inner
  }
  return v
}

/** key=value pairs of one -e argument, or undefined when it is not a list of them. */
export function parseKv(arg: string): Record<string, string> | undefined {
  const pieces = splitArgs(arg.trim())
  if (!pieces || pieces.length === 0) return undefined
  const out: Record<string, string> = {}
  for (const p of pieces) {
    const eq = p.indexOf('=')
    if (eq < 1 || !KEY.test(p.slice(0, eq))) return undefined
    out[p.slice(0, eq)] = unquote(p.slice(eq + 1))
  }
  return out
}

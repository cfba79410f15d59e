// The conditions users write in `when:`, `changed_when:` and `failed_when:` are Jinja
// expressions in Ansible. This is a small safe evaluator for the common subset —
// names, literals, not/and/or, comparisons, `in`, `is (not) defined`, `| length`,
// `| bool`, `| int` — so those lines keep working; anything else is a clear error.

type Tok = {t: 'num' | 'str' | 'name' | 'op' | 'end'; v: string}

function tokenize(src: string): Tok[] {
  const out: Tok[] = []
  let i = 0
  while (i < src.length) {
    const c = src[i]
    if (/\s/.test(c)) { i++; continue }
    const two = src.slice(i, i + 2)
    if (['==', '!=', '<=', '>='].includes(two)) { out.push({t: 'op', v: two}); i += 2; continue }
    if ('()<>|.[],'.includes(c)) { out.push({t: 'op', v: c}); i++; continue }
    if (c === '"' || c === "'") {
      let j = i + 1
      let s = ''
      while (j < src.length && src[j] !== c) { if (src[j] === '\\') j++; s += src[j]; j++ }
      if (j >= src.length) throw new Error(`unterminated string in: ${src}`)
      out.push({t: 'str', v: s}); i = j + 1; continue
    }
    const num = /^-?\d+(\.\d+)?/.exec(src.slice(i))
    if (num) { out.push({t: 'num', v: num[0]}); i += num[0].length; continue }
    const name = /^[A-Za-z_][\w]*/.exec(src.slice(i))
    if (name) { out.push({t: 'name', v: name[0]}); i += name[0].length; continue }
    throw new Error(`unexpected "${c}" in: ${src}`)
  }
  out.push({t: 'end', v: ''})
  return out
}

const UNDEF = Symbol('undefined')

/** Evaluate a condition against variables; throws Error with a readable message. */
export function evaluate(expr: string | boolean | number, vars: Record<string, unknown>): boolean {
  if (typeof expr === 'boolean') return expr
  if (typeof expr === 'number') return expr !== 0
  let src = expr.trim()
  const wrapped = /^\{\{(.*)\}\}$/s.exec(src)
  if (wrapped) src = wrapped[1]
  const toks = tokenize(src)
  let p = 0
  const peek = () => toks[p]
  const next = () => toks[p++]
  const accept = (v: string) => (peek().v === v && (peek().t === 'op' || peek().t === 'name') ? (p++, true) : false)
  const expect = (v: string) => { if (!accept(v)) throw new Error(`expected "${v}" in: ${src}`) }

  const truthy = (v: unknown) => v !== UNDEF && Boolean(v) && !(Array.isArray(v) && v.length === 0) && v !== 'false' && v !== 'no'

  const orExpr = (): unknown => {
    let l = andExpr()
    while (accept('or')) { const r = andExpr(); l = truthy(l) || truthy(r) }
    return l
  }
  const andExpr = (): unknown => {
    let l = notExpr()
    while (accept('and')) { const r = notExpr(); l = truthy(l) && truthy(r) }
    return l
  }
  const notExpr = (): unknown => (accept('not') ? !truthy(notExpr()) : cmpExpr())
  const cmpExpr = (): unknown => {
    const l = filterExpr()
    const t = peek()
    if (t.t === 'name' && t.v === 'is') {
      next()
      const neg = accept('not')
      const test = next().v
      let r: boolean
      if (test === 'defined') r = l !== UNDEF
      else if (test === 'undefined') r = l === UNDEF
      else if (test === 'none') r = l === null
      else throw new Error(`unsupported test "is ${test}" in: ${src}`)
      return neg ? !r : r
    }
    if (t.t === 'name' && (t.v === 'in' || (t.v === 'not' && toks[p + 1]?.v === 'in'))) {
      const neg = t.v === 'not'
      next(); if (neg) next()
      const r = filterExpr()
      const has = Array.isArray(r) ? r.some((x) => x === l || String(x) === String(l)) : typeof r === 'string' ? r.includes(String(l)) : r && typeof r === 'object' ? String(l) in r : false
      return neg ? !has : has
    }
    if (t.t === 'op' && ['==', '!=', '<', '>', '<=', '>='].includes(t.v)) {
      next()
      const r = filterExpr()
      const a = l === UNDEF ? undefined : l
      const b = r === UNDEF ? undefined : r
      const num = typeof a === 'number' || typeof b === 'number'
      const x = num ? Number(a) : a
      const y = num ? Number(b) : b
      switch (t.v) {
        case '==': return x === y || (x !== undefined && y !== undefined && String(x) === String(y))
        case '!=': return !(x === y || (x !== undefined && y !== undefined && String(x) === String(y)))
        case '<': return (x as number) < (y as number)
        case '>': return (x as number) > (y as number)
        case '<=': return (x as number) <= (y as number)
        default: return (x as number) >= (y as number)
      }
    }
    return l
  }
  const filterExpr = (): unknown => {
    let v = primary()
    while (accept('|')) {
      const f = next().v
      if (f === 'length') v = v === UNDEF ? 0 : Array.isArray(v) || typeof v === 'string' ? v.length : v && typeof v === 'object' ? Object.keys(v).length : 0
      else if (f === 'bool') v = v === true || ['yes', 'true', '1', 'on'].includes(String(v).toLowerCase())
      else if (f === 'int') v = Number.parseInt(String(v), 10) || 0
      else if (f === 'string') v = v === UNDEF ? '' : String(v)
      else if (f === 'default') {
        expect('(')
        const d = orExpr()
        expect(')')
        if (v === UNDEF) v = d
      } else throw new Error(`unsupported filter "| ${f}" in: ${src} (supported: length, bool, int, string, default)`)
    }
    return v
  }
  const primary = (): unknown => {
    const t = next()
    if (t.t === 'op' && t.v === '(') { const v = orExpr(); expect(')'); return v }
    if (t.t === 'op' && t.v === '[') {
      const items: unknown[] = []
      while (!accept(']')) { items.push(orExpr()); accept(',') }
      return items
    }
    if (t.t === 'num') return Number(t.v)
    if (t.t === 'str') return t.v
    if (t.t === 'name') {
      if (t.v === 'true' || t.v === 'True') return true
      if (t.v === 'false' || t.v === 'False') return false
      if (t.v === 'none' || t.v === 'None') return null
      let v: unknown = Object.prototype.hasOwnProperty.call(vars, t.v) ? vars[t.v] : UNDEF
      while (peek().v === '.' || peek().v === '[') {
        if (accept('.')) {
          const k = next().v
          v = v !== UNDEF && v !== null && typeof v === 'object' && k in (v as object) ? (v as Record<string, unknown>)[k] : UNDEF
        } else {
          next()
          const k = orExpr()
          expect(']')
          v = v !== UNDEF && v !== null && typeof v === 'object' && String(k) in (v as object) ? (v as Record<string, unknown>)[String(k)] : UNDEF
        }
      }
      return v
    }
    throw new Error(`unexpected "${t.v || 'end'}" in: ${src}`)
  }
  const v = orExpr()
  if (peek().t !== 'end') throw new Error(`unexpected "${peek().v}" in: ${src}`)
  if (v === UNDEF) throw new Error(`undefined variable in condition: ${src} (use "is defined" to test for it)`)
  return truthy(v)
}

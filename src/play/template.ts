import {TemplateError, type ErrorWhere} from '../errors.js'
import {checkCondition, evalNode, ExprError, plain} from './expr.js'
import {compileTemplate, renderPieces, type Compiled} from './jinja.js'
import {use} from './values.js'

// `{{ … }}` strings and template files, rendered by the one expression language of
// expr.ts (a Jinja subset, plus the Handlebars helpers and blocks earlier versions
// documented). An undefined variable is an error naming it, never an empty string.
// A value is rendered once: text inside a variable's value that looks like `{{…}}`
// is inserted as data and never rendered again (no template injection).

export {redisArg} from './helpers.js'

const cache = new Map<string, Compiled>()

function compile(source: string, where: ErrorWhere): Compiled {
  let t = cache.get(source)
  if (!t) {
    try {
      t = compileTemplate(source)
    } catch (error) {
      throw translate(error, source, where)
    }
    // Templates are few, loop items many: a bounded cache keeps one parse per template.
    if (cache.size > 2000) cache.clear()
    cache.set(source, t)
  }
  return t
}

export function hasTemplate(s: string): boolean {
  return s.includes('{{') || s.includes('{%') || s.includes('{#')
}

/**
 * Render one string. A string that is exactly one `{{ expr }}` keeps the value's type
 * (a list stays a list for `loop:`), as in Ansible.
 */
export function renderString(source: string, vars: Record<string, unknown>, where: ErrorWhere = {}): unknown {
  if (!hasTemplate(source)) return source
  const t = compile(source, where)
  if (!t.single) return run(t, source, vars, where)
  try {
    return plain(use(evalNode(t.single, {vars, locals: new Map()}), 0))
  } catch (error) {
    throw translate(error, source, where)
  }
}

/** Render a whole text (a template file); always returns a string. */
export function renderText(source: string, vars: Record<string, unknown>, where: ErrorWhere = {}): string {
  if (!hasTemplate(source)) return source
  return run(compile(source, where), source, vars, where)
}

function run(t: Compiled, source: string, vars: Record<string, unknown>, where: ErrorWhere): string {
  const out: string[] = []
  try {
    renderPieces(t.pieces, {vars, locals: new Map()}, out)
  } catch (error) {
    throw translate(error, source, where)
  }
  let s = out.join('')
  // Ansible keeps as many trailing newlines as the template has (trim_blocks may eat one).
  const have = /\n*$/.exec(s)![0].length
  if (have < t.trailingNewlines) s += '\n'.repeat(t.trailingNewlines - have)
  return s
}

/** Check the syntax of a `{{ }}` string or a template (unknown tags and filters) without rendering it. */
export function checkTemplate(source: string, where: ErrorWhere = {}): void {
  if (hasTemplate(source)) compile(source, where)
}

/** Check the syntax of a `when:`-style condition. */
export function checkWhen(expr: string | boolean, where: ErrorWhere = {}): void {
  if (typeof expr !== 'string') return
  try {
    checkCondition(expr)
  } catch (error) {
    throw conditionError(error, expr, where)
  }
}

/** A condition's ExprError as a TemplateError (bad input: exit 5), at the task that has it. */
export function conditionError(error: unknown, expr: string, where: ErrorWhere): unknown {
  if (!(error instanceof ExprError)) return error
  return new TemplateError(`${error.message} in condition "${expr}" (column ${error.pos + 1})`, {where, hint: error.hint})
}

function lineCol(source: string, pos: number): {line: number; col: number} {
  const before = source.slice(0, pos)
  const line = before.split('\n').length
  return {line, col: pos - before.lastIndexOf('\n')}
}

function translate(error: unknown, source: string, where: ErrorWhere): unknown {
  if (!(error instanceof ExprError)) return error
  const {line, col} = lineCol(source, error.pos)
  // A template file: its own line and column. A string in a playbook: the task's line, plus
  // the line inside the string, and the snippet (the column in the YAML is not known).
  if (where.line === undefined) {
    return new TemplateError(error.message, {where: {...where, line, col}, hint: error.hint})
  }
  const text = source.split('\n')[line - 1] ?? ''
  const snippet = text.length > 80 ? `${text.slice(Math.max(0, col - 40), col + 40)}` : text
  return new TemplateError(`${error.message} (in "${snippet.trim()}", column ${col})`, {where: {...where, line: where.line + line - 1}, hint: error.hint})
}

/** Render every string inside a value (task arguments), keeping structure. */
export function renderDeep(value: unknown, vars: Record<string, unknown>, where: ErrorWhere = {}): unknown {
  if (typeof value === 'string') return renderString(value, vars, where)
  if (Array.isArray(value)) return value.map((v) => renderDeep(v, vars, where))
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) out[k] = renderDeep(v, vars, where)
    return out
  }
  return value
}

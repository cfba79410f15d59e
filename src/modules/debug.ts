// debug: print a message or a variable's value, as Ansible's debug. Runs on the
// controller: no round trip to the host.
//
// Parameters:
//   msg        what to print (templated; a list or mapping prints as JSON). Default "Hello world!"
//   var        an expression whose value is printed ({var: value}); not templated:
//              write the name, e.g. var: redis_ports, or var: result.stdout_lines.
//              An undefined one prints "VARIABLE IS NOT DEFINED!" (as Ansible)
//   verbosity  print only with at least this many -v (else the item is skipped)
//
// Values of secret variables are masked (********), as everywhere.
//
// Example:
//   - name: show the ports
//     debug:
//       var: redis_ports

import {renderString} from '../play/template.js'
import {mask} from '../shell.js'
import type {ItemResult, ModuleContext, ModuleSpec, TaskItem} from './types.js'

const NOT_DEFINED = 'VARIABLE IS NOT DEFINED!'

function show(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v, null, 2)
}

/** The value of a `var:` expression, or Ansible's placeholder when it is undefined. */
export function varValue(expr: string, vars: Record<string, unknown>): unknown {
  const e = expr.trim().replace(/^\{\{(.*)\}\}$/s, '$1')
  try {
    return renderString(`{{ ${e} }}`, vars)
  } catch (error) {
    if (/undefined|not defined|no attribute|has no/i.test((error as Error).message)) return NOT_DEFINED
    throw error
  }
}

/** Pure: one debug item → its result. */
export function debugItem(args: Record<string, unknown>, vars: Record<string, unknown>, verbosity: number, secrets: Iterable<string>): ItemResult {
  const need = Number(args.verbosity ?? 0)
  if (verbosity < need) return {status: 'skipped', msg: `verbosity threshold not met (needs -${'v'.repeat(need)})`, data: {skipped_reason: 'Verbosity threshold not met.'}}
  if (args.var !== undefined && args.msg !== undefined) return {status: 'failed', msg: "debug: 'msg' and 'var' are incompatible options: give one"}
  if (args.var !== undefined) {
    const name = String(args.var)
    const value = varValue(name, vars)
    return {status: 'ok', msg: mask(`${name} = ${show(value)}`, secrets), data: {[name]: value}}
  }
  const msg = args.msg ?? 'Hello world!'
  return {status: 'ok', msg: mask(show(msg), secrets), data: {msg}}
}

export const debugModule: ModuleSpec = {
  name: 'debug',
  description: 'Print a message or the value of a variable (on the controller, no round trip)',
  args: {
    msg: {type: 'any'},
    var: {type: 'string'},
    verbosity: {type: 'int', default: 0},
  },
  checkMode: true,
  run(ctx: ModuleContext, items: TaskItem[]): Promise<ItemResult[]> {
    return Promise.resolve(items.map((it) => debugItem(it.args, it.vars ?? ctx.vars, ctx.verbosity ?? 0, ctx.secrets)))
  },
}

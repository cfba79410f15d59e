import {InputError, TemplateError} from '../errors.js'
import type {Host, Inventory} from '../inventory/inventory.js'
import {parse as parseYamlText} from 'yaml'
import {parseKv} from './kv.js'
import {hasTemplate, renderString} from './template.js'

// Variable precedence, as Ansible: inventory group vars < host vars < play vars <
// task vars < extra vars (-e). Inventory and playbook values may reference other
// variables; -e values are data from the command line and are never rendered.

const SECRET_NAME = /(password|passwd|secret|token|auth_key|private_key(?!_file))/i

/** Variables whose names say they are secrets (redis_password, api_token, …). */
export function isSecretName(name: string): boolean {
  return SECRET_NAME.test(name) && !/_(file|path)$/.test(name)
}

export function magicVars(host: Host, inv: Inventory, playHosts: Host[]): Record<string, unknown> {
  const groups: Record<string, string[]> = {}
  for (const g of inv.groups.keys()) groups[g] = [...inv.hosts.values()].filter((h) => h.groups.includes(g)).map((h) => h.name)
  return {
    inventory_hostname: host.name,
    inventory_hostname_short: host.name.split('.')[0],
    ansible_host: host.connection.address,
    group_names: host.groups.filter((g) => g !== 'all'),
    groups,
    ansible_play_hosts: playHosts.map((h) => h.name),
    // Older names Ansible still answers to (the play's hosts, in one batch here).
    play_hosts: playHosts.map((h) => h.name),
    ansible_play_batch: playHosts.map((h) => h.name),
    inventory_file: inv.file,
  }
}

/**
 * Merge layers and render the templated values among them. A value may use any
 * variable from any layer; ones that depend on others are rendered after them.
 */
export function resolveVars(layers: Array<Record<string, unknown>>, extra: Record<string, unknown>): Record<string, unknown> {
  const merged: Record<string, unknown> = {}
  for (const l of layers) Object.assign(merged, l)
  Object.assign(merged, extra)
  const pending = new Set(Object.keys(merged).filter((k) => !(k in extra) && typeof merged[k] === 'string' && hasTemplate(merged[k] as string)))
  for (let pass = 0; pending.size > 0 && pass < 10; pass++) {
    let progressed = false
    for (const k of [...pending]) {
      const ctx = {...merged}
      for (const p of pending) delete ctx[p]
      try {
        merged[k] = renderString(merged[k] as string, ctx)
        pending.delete(k)
        progressed = true
      } catch (error) {
        if (!(error instanceof TemplateError)) throw error
      }
    }
    if (!progressed) break
  }
  for (const k of pending) {
    const ctx = {...merged}
    for (const p of pending) if (p !== k) delete ctx[p]
    delete ctx[k]
    try {
      merged[k] = renderString(merged[k] as string, ctx)
    } catch (error) {
      if (error instanceof TemplateError) {
        error.message = `variable "${k}": ${error.message}${pending.has(error.message.replace(/^undefined variable "(.*)"$/, '$1')) ? ' (variables refer to each other in a cycle)' : ''}`
      }
      throw error
    }
  }
  return merged
}

// Ansible reads `-e '{…}'` as YAML, so a flow mapping ({a: 1}) works as well as JSON.
function jsonOrYamlMapping(t: string): Record<string, unknown> | undefined {
  for (const parse of [(x: string): unknown => JSON.parse(x), (x: string): unknown => parseYamlText(x)]) {
    try {
      const v: unknown = parse(t)
      if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>
    } catch {}
  }
  return undefined
}

/** Parse `-e key=value` and `-e @file.yml` / `-e '{"json": 1}'` (later ones win). */
export function parseExtraVar(arg: string, readFile: (path: string) => Record<string, unknown>): Record<string, unknown> {
  if (arg.startsWith('@')) return readFile(arg.slice(1))
  const t = arg.trim()
  if (t.startsWith('{')) {
    const v = jsonOrYamlMapping(t)
    if (v) return v
  }
  const pairs = parseKv(arg)
  if (pairs) return pairs
  const out: Record<string, unknown> = {}
  const m = /^([A-Za-z_][\w]*)=([\s\S]*)$/.exec(arg)
  if (!m) {
    // The argument may be a mistyped secret (redis_password:hunter2): never echo its value.
    const shown = SECRET_NAME.test(arg) ? `${/^[\w@./-]*/.exec(arg)![0]}… (rest hidden: it may hold a secret)` : arg
    throw new InputError(`-e "${shown}" is not key=value`, {hint: 'write -e name=value, -e @vars.yml, or -e \'{"name": "value"}\'; names start with a letter or _'})
  }
  out[m[1]] = m[2]
  return out
}

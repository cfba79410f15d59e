import {readFileSync} from 'node:fs'
import {dirname, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'
import {Flags} from '@oclif/core'
import {BaremetalError, EXIT, InputError} from '../errors.js'
import {type Inventory, loadInventory} from '../inventory/inventory.js'
import {allModules} from '../modules/index.js'
import {ConsoleReporter, renderRecap} from '../play/output.js'
import {loadPlaybook} from '../play/playbook.js'
import {closeAll, type RunResult, runPlaybook} from '../play/runner.js'
import {parseExtraVar} from '../play/vars.js'
import {mask} from '../shell.js'
import type {HostFacts} from '../modules/types.js'
import type {Transport} from '../transport/types.js'
import {loadYaml} from '../yamlfile.js'

// Shared by the thin oclif commands: flags, loading input with good errors, running
// a playbook with Ctrl-C handling, and printing the recap or one JSON document.

export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')
export const bundled = (...p: string[]) => resolve(PACKAGE_ROOT, ...p)

export const inventoryFlag = Flags.string({
  char: 'i',
  description: 'inventory file (Ansible YAML); default: the bundled local cluster inventory/local.yml',
  default: bundled('inventory/local.yml'),
})

export const connectionFlags = {
  inventory: inventoryFlag,
  limit: Flags.string({char: 'l', description: 'only hosts matching this pattern (group, host, "a:b", "!c")'}),
  forks: Flags.integer({char: 'f', description: 'hosts worked on in parallel', default: 100, min: 1}),
  'accept-new-host-keys': Flags.boolean({description: 'add unknown SSH host keys to known_hosts (a changed key is still refused)', default: false}),
  json: Flags.boolean({description: 'print one JSON document instead of progress and recap', default: false}),
  verbose: Flags.boolean({char: 'v', description: 'list every host\'s result, also the ok ones', default: false}),
}

export const playFlags = {
  ...connectionFlags,
  'extra-vars': Flags.string({char: 'e', description: 'set variables: key=value, @file.yml, or a JSON object (repeatable)', multiple: true}),
  check: Flags.boolean({char: 'C', description: 'gather facts and plan; report what would change; change nothing', default: false}),
  diff: Flags.boolean({char: 'D', description: 'show unified diffs of changed files', default: false}),
  tags: Flags.string({char: 't', description: 'only tasks with these tags (comma separated)'}),
  'skip-tags': Flags.string({description: 'skip tasks with these tags (comma separated)'}),
}

export interface PlayFlagValues {
  inventory: string
  limit?: string
  forks: number
  'accept-new-host-keys': boolean
  json: boolean
  verbose: boolean
  'extra-vars'?: string[]
  check: boolean
  diff: boolean
  tags?: string
  'skip-tags'?: string
}

/** Print an error the way a person can act on it: where, what, the fix. */
export function reportError(error: unknown, json: boolean): number {
  const secrets: string[] = []
  if (error instanceof BaremetalError) {
    if (json) process.stdout.write(JSON.stringify({error: error.toJSON()}, null, 2) + '\n')
    else process.stderr.write(`error: ${mask(error.describe(), secrets)}\n`)
    return error.exitCode
  }
  const msg = error instanceof Error ? error.message : String(error)
  if (json) process.stdout.write(JSON.stringify({error: {error: 'InternalError', message: msg}}, null, 2) + '\n')
  else process.stderr.write(`error: ${msg}\n  (this is a bug in baremetal if the input was valid: please report it with the command you ran)\n`)
  return EXIT.failed
}

export function readExtraVars(args: string[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const a of args ?? []) {
    Object.assign(out, parseExtraVar(a, (file) => {
      const src = loadYaml(resolve(file), InputError)
      if (!src.value || typeof src.value !== 'object' || Array.isArray(src.value)) {
        throw new InputError(`-e @${file}: the file must hold a mapping of variables`, {where: {file}})
      }
      return src.value as Record<string, unknown>
    }))
  }
  return out
}

export function loadInv(path: string): Inventory {
  return loadInventory(path)
}

/** Ctrl-C once: stop starting new work and print the recap so far; twice: close connections now. */
export function interruptible(onHardStop: () => Promise<void>): {signal: AbortSignal; dispose(): void} {
  const ac = new AbortController()
  let count = 0
  const handler = () => {
    count++
    if (count === 1) {
      process.stderr.write('\ninterrupted: no new work is started; waiting for commands in flight (Ctrl-C again to abort them)\n')
      ac.abort()
      setTimeout(() => { void onHardStop() }, 20000).unref()
    } else {
      process.stderr.write('aborting in-flight commands\n')
      void onHardStop().finally(() => process.exit(EXIT.interrupted))
    }
  }
  process.on('SIGINT', handler)
  process.on('SIGTERM', handler)
  return {signal: ac.signal, dispose: () => { process.off('SIGINT', handler); process.off('SIGTERM', handler) }}
}

export interface ExecuteOptions {
  playbooks: string[]
  flags: PlayFlagValues
  /** Variables the command sets from its own flags (e.g. up --allow-partial). */
  vars?: Record<string, unknown>
  /** Replace every play's `hosts:` (up/down --group). */
  hosts?: string
}

/** Load everything (failing early on bad input), run the playbooks in order, print, return the exit code. */
export async function executePlaybooks(o: ExecuteOptions): Promise<{code: number; result?: RunResult}> {
  const f = o.flags
  const tty = Boolean(process.stdout.isTTY) && !f.json
  const transports = new Map<string, {transport: Transport; facts?: HostFacts}>()
  const intr = interruptible(() => closeAll(transports))
  try {
    const inventory = loadInv(f.inventory)
    const extraVars = {...(o.vars ?? {}), ...readExtraVars(f['extra-vars'])}
    const modules = allModules()
    const books = o.playbooks.map((p) => loadPlaybook(p, modules))
    if (o.hosts) for (const b of books) for (const p of b.plays) p.hosts = o.hosts
    const reporter = new ConsoleReporter({json: f.json, tty, verbose: f.verbose, diff: f.diff})
    let merged: RunResult | undefined
    for (const pb of books) {
      const r = await runPlaybook({
        inventory, playbook: pb, extraVars, limit: f.limit, check: f.check, diff: f.diff, forks: f.forks,
        tags: f.tags?.split(','), skipTags: f['skip-tags']?.split(','), ssh: {acceptNewHostKeys: f['accept-new-host-keys']},
        reporter, signal: intr.signal, transports,
      })
      merged = merged ? mergeResults(merged, r) : r
      if (r.exitCode !== EXIT.ok) break
    }
    const result = merged!
    if (f.json) process.stdout.write(JSON.stringify(result, null, 2) + '\n')
    else process.stdout.write(renderRecap(result, tty) + '\n')
    return {code: result.exitCode, result}
  } catch (error) {
    return {code: reportError(error, f.json)}
  } finally {
    intr.dispose()
    await closeAll(transports)
  }
}

function mergeResults(a: RunResult, b: RunResult): RunResult {
  const recap = {...a.recap}
  for (const [h, r] of Object.entries(b.recap)) {
    const x = recap[h]
    recap[h] = x ? {ok: x.ok + r.ok, changed: x.changed + r.changed, failed: x.failed + r.failed, skipped: x.skipped + r.skipped, unreachable: x.unreachable + r.unreachable, ignored: x.ignored + r.ignored} : r
  }
  return {
    recap, tasks: [...a.tasks, ...b.tasks], warnings: [...a.warnings, ...b.warnings], durationMs: a.durationMs + b.durationMs,
    check: a.check, aborted: a.aborted ?? b.aborted, stats: {...a.stats, ...b.stats}, exitCode: Math.max(a.exitCode, b.exitCode),
  }
}

export function readJsonFile(p: string): unknown {
  return JSON.parse(readFileSync(p, 'utf8'))
}

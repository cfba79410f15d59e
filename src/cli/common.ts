import {readFileSync, statSync} from 'node:fs'
import {homedir} from 'node:os'
import {dirname, isAbsolute, resolve} from 'node:path'
import {BaremetalError, EXIT, InputError, InventoryError} from '../errors.js'
import {type Inventory, selectHosts} from '../inventory/inventory.js'
import {flagGiven, loadInventorySources} from '../inventory/sources.js'
import {allModules} from '../modules/index.js'
import {ConsoleReporter, renderRecap} from '../play/output.js'
import {loadPlaybook, type Playbook} from '../play/playbook.js'
import {closeAll, type ConnectOptions, type RunResult, runPlaybook, taskNameMatches} from '../play/runner.js'
import {isSecretName, parseExtraVar} from '../play/vars.js'
import {mask} from '../shell.js'
import type {HostFacts} from '../modules/types.js'
import type {Transport} from '../transport/types.js'
import {loadYaml} from '../yamlfile.js'
import {inventoryFlag, verbosityOf} from './flags.js'

// Shared by the thin oclif commands: flags, loading input with good errors, running
// a playbook with Ctrl-C handling, and printing the recap or one JSON document.

export {bundled, PACKAGE_ROOT} from './paths.js'
export {connectionFlags, inventoryFlag, playFlags} from './flags.js'

export interface PlayFlagValues {
  inventory: string
  limit?: string
  forks: number
  'accept-new-host-keys': boolean
  user?: string
  'private-key'?: string
  json: boolean
  verbose: boolean
  verbosity?: number
  'start-at-task'?: string
  'extra-vars'?: string[]
  check: boolean
  diff: boolean
  tags?: string
  'skip-tags'?: string
}

// Secrets the CLI itself learned (-e values of secret-named variables, the password
// from the environment or a file): masked in every error it prints, JSON included.
const cliSecrets = new Set<string>()

/** Remember a value that must never be printed by this process. */
export function addCliSecret(value: unknown): void {
  if (typeof value === 'string' && value !== '') cliSecrets.add(value)
}

/** Print an error the way a person can act on it: where, what, the fix. */
export function reportError(error: unknown, json: boolean): number {
  const m = (s: string) => mask(s, cliSecrets)
  // Inside JSON a secret holding " or \ is escaped: mask that spelling too.
  const mj = (s: string) =>
    mask(
      s,
      [...cliSecrets].flatMap((x) => [x, JSON.stringify(x).slice(1, -1)]),
    )
  if (error instanceof BaremetalError) {
    if (json) process.stdout.write(mj(JSON.stringify({error: error.toJSON()}, null, 2)) + '\n')
    else process.stderr.write(`error: ${m(error.describe())}\n`)
    return error.exitCode
  }
  const msg = m(error instanceof Error ? error.message : String(error))
  if (json) process.stdout.write(mj(JSON.stringify({error: {error: 'InternalError', message: msg}}, null, 2)) + '\n')
  else process.stderr.write(`error: ${msg}\n  (this is a bug in baremetal if the input was valid: please report it with the command you ran)\n`)
  return EXIT.failed
}

export function readExtraVars(args: string[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const a of args ?? []) {
    Object.assign(
      out,
      parseExtraVar(a, (file) => {
        const src = loadYaml(resolve(file), InputError)
        if (!src.value || typeof src.value !== 'object' || Array.isArray(src.value)) {
          throw new InputError(`-e @${file}: the file must hold a mapping of variables`, {where: {file}})
        }
        return src.value as Record<string, unknown>
      }),
    )
  }
  for (const [k, v] of Object.entries(out)) if (isSecretName(k)) addCliSecret(v)
  return out
}

/** The environment variable `up`, `down` and `status` read the Redis password from. */
export const PASSWORD_ENV = 'BAREMETAL_REDIS_PASSWORD'

// A password file's content, without the final newline an editor or `echo` adds.
function readPasswordFile(path: string, base: string, from: string, warnings: string[]): string {
  const abs = path.startsWith('~/') ? resolve(homedir(), path.slice(2)) : isAbsolute(path) ? path : resolve(base, path)
  let text: string
  try {
    text = readFileSync(abs, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    throw new InputError(`redis_password_file ${abs} (${from}) cannot be read: ${code === 'ENOENT' ? 'no such file' : (code ?? String(error))}`, {
      where: {file: abs},
      hint: 'give the path of a file holding only the password, readable by the user running baremetal',
    })
  }
  const pw = text.replace(/(\r?\n)+$/, '')
  if (pw === '') throw new InputError(`redis_password_file ${abs} (${from}) is empty`, {where: {file: abs}, hint: 'write the password into it, or leave redis_password_file unset'})
  try {
    const mode = statSync(abs).mode & 0o777
    if (mode & 0o077) warnings.push(`redis_password_file ${abs} is readable by other users (mode ${mode.toString(8).padStart(4, '0')}): chmod 600 it`)
  } catch {}
  return pw
}

/**
 * Where the Redis password comes from, first found wins: -e redis_password, -e
 * redis_password_file, $BAREMETAL_REDIS_PASSWORD, the inventory's redis_password_file,
 * the inventory's redis_password. Files are read here, on the controller; the value is
 * returned as the variable redis_password (marked secret) so no command line carries it.
 */
export function redisPasswordVars(extra: Record<string, unknown>, inv: Inventory, pattern: string, warnings: string[] = []): Record<string, unknown> {
  let pw: string | undefined
  if (extra.redis_password !== undefined && extra.redis_password !== null) return {}
  if (typeof extra.redis_password_file === 'string' && extra.redis_password_file !== '') {
    pw = readPasswordFile(extra.redis_password_file, process.cwd(), '-e', warnings)
  } else if (process.env[PASSWORD_ENV]) {
    pw = process.env[PASSWORD_ENV]
  } else {
    const files = new Map<string, string>()
    for (const h of selectHosts(inv, pattern)) {
      const f = h.vars.redis_password_file
      if (typeof f === 'string' && f !== '') files.set(f, h.name)
    }
    const found = new Set([...files].map(([f, host]) => readPasswordFile(f, dirname(resolve(inv.file)), `inventory, host ${host}`, warnings)))
    if (found.size > 1) {
      throw new InventoryError(`the inventory's redis_password_file values hold ${found.size} different passwords`, {
        where: {file: inv.file},
        hint: 'one cluster has one password (requirepass = masterauth): point every host at the same file',
      })
    }
    pw = [...found][0]
  }
  if (pw === undefined) return {}
  addCliSecret(pw)
  return {redis_password: pw}
}

const printedNotes = new Set<string>()

/** The inventory: -i, else ansible.cfg's, else the bundled one; group_vars/host_vars beside it and the playbooks. */
export function loadInv(path: string, playbooks: string[] = []): Inventory {
  const given = path !== inventoryFlag.default || flagGiven(process.argv.slice(2), 'i', 'inventory')
  const r = loadInventorySources({given: given ? path : undefined, fallback: path, playbooks, argv: process.argv.slice(2)})
  // up/down load the inventory twice (password, then the run): say each thing once.
  for (const n of r.notes) {
    if (printedNotes.has(n)) continue
    printedNotes.add(n)
    process.stderr.write(n + '\n')
  }
  return r.inventory
}

/** How long commands in flight may run on after Ctrl-C before they are aborted. */
export const INTERRUPT_GRACE_MS = 20_000

/**
 * Ctrl-C (or SIGTERM) once: stop starting new work, let commands in flight finish for up
 * to INTERRUPT_GRACE_MS, then abort them; twice: abort them now. Either way the run
 * ends with the recap so far and exit code 130; a run that still has not ended 10 s
 * after the abort exits anyway.
 */
export function interruptible(onHardStop: () => Promise<void>): {signal: AbortSignal; dispose(): void} {
  const ac = new AbortController()
  let count = 0
  let stopping = false
  const hardStop = () => {
    if (stopping) return
    stopping = true
    void onHardStop()
    setTimeout(() => {
      process.stderr.write('interrupted: the run did not wind down in time; exiting\n')
      process.exit(EXIT.interrupted)
    }, 10_000).unref()
  }
  const handler = () => {
    count++
    if (count === 1) {
      process.stderr.write(`\ninterrupted: no new work is started; commands in flight may finish for ${INTERRUPT_GRACE_MS / 1000} s (Ctrl-C again to abort them now)\n`)
      ac.abort()
      setTimeout(() => {
        process.stderr.write('interrupted: aborting commands still in flight\n')
        hardStop()
      }, INTERRUPT_GRACE_MS).unref()
    } else {
      process.stderr.write('aborting in-flight commands\n')
      hardStop()
    }
  }
  process.on('SIGINT', handler)
  process.on('SIGTERM', handler)
  return {
    signal: ac.signal,
    dispose: () => {
      process.off('SIGINT', handler)
      process.off('SIGTERM', handler)
    },
  }
}

export interface ExecuteOptions {
  playbooks: string[]
  flags: PlayFlagValues
  /** Variables the command sets from its own flags (e.g. up --allow-partial). */
  vars?: Record<string, unknown>
  /** Replace every play's `hosts:` (up/down --group). */
  hosts?: string
  /** Printed with the recap (e.g. "the cluster has no password"). */
  warnings?: string[]
  /** Connections the command opened before (records read, lock held): reused, closed at the end. */
  transports?: Map<string, {transport: Transport; facts?: HostFacts}>
}

/** How a command's flags say to connect: host keys, -u, --private-key. */
export function sshOptions(f: Pick<PlayFlagValues, 'accept-new-host-keys' | 'user' | 'private-key'>): ConnectOptions {
  return {acceptNewHostKeys: f['accept-new-host-keys'], remoteUser: f.user, privateKeyFile: f['private-key']}
}

/** Load everything (failing early on bad input), run the playbooks in order; the merged result (its exitCode included). */
export async function executePlaybooks(o: ExecuteOptions): Promise<RunResult> {
  const f = o.flags
  const tty = Boolean(process.stdout.isTTY) && !f.json
  const transports = o.transports ?? new Map<string, {transport: Transport; facts?: HostFacts}>()
  const intr = interruptible(() => closeAll(transports))
  try {
    const inventory = loadInv(f.inventory, o.playbooks)
    const extraVars = {...(o.vars ?? {}), ...readExtraVars(f['extra-vars'])}
    const books = loadBooks(o.playbooks, o.hosts)
    if (f['start-at-task'] !== undefined) requireStartTask(books, f['start-at-task'])
    const verbosity = verbosityOf(f)
    const reporter = new ConsoleReporter({json: f.json, tty, verbose: verbosity > 0, verbosity, diff: f.diff})
    let merged: RunResult | undefined
    for (const pb of books) {
      const r = await runPlaybook({
        inventory,
        playbook: pb,
        extraVars,
        limit: f.limit,
        check: f.check,
        diff: f.diff,
        forks: inventory.forks ?? f.forks,
        tags: f.tags?.split(','),
        skipTags: f['skip-tags']?.split(','),
        ssh: sshOptions(f),
        reporter,
        signal: intr.signal,
        transports,
        startAtTask: f['start-at-task'],
        verbosity,
      })
      merged = merged ? mergeResults(merged, r) : r
      if (r.exitCode !== EXIT.ok) break
    }
    const result = merged!
    result.warnings.push(...(o.warnings ?? []))
    return result
  } finally {
    intr.dispose()
    await closeAll(transports)
  }
}

/** The playbooks a command runs, loaded and validated (every play's `hosts:` replaced by up/down --group). */
export function loadBooks(paths: string[], hosts?: string): Playbook[] {
  const modules = allModules()
  const books = paths.map((p) => loadPlaybook(p, modules))
  if (hosts) for (const b of books) for (const p of b.plays) p.hosts = hosts
  return books
}

// Ansible stops with "No matching task" when --start-at-task names none: so does this, before any host.
function requireStartTask(books: Playbook[], name: string): void {
  const names = books.flatMap((b) => b.plays.flatMap((p) => p.tasks.map((t) => t.name)))
  if (names.some((n) => taskNameMatches(n, name))) return
  throw new InputError(`--start-at-task "${name}": no task of the playbook has that name`, {
    where: {file: books[0]?.file},
    hint: `give a task's name exactly as written (or a glob such as "Install*"); first tasks: ${names
      .slice(0, 5)
      .map((n) => JSON.stringify(n))
      .join(', ')}`,
  })
}

/** The recap as a person reads it (the JSON document is the RunResult itself). */
export function recapText(result: RunResult): string {
  return renderRecap(result, Boolean(process.stdout.isTTY))
}

function mergeResults(a: RunResult, b: RunResult): RunResult {
  const recap = {...a.recap}
  for (const [h, r] of Object.entries(b.recap)) {
    const x = recap[h]
    recap[h] = x
      ? {
          ok: x.ok + r.ok,
          changed: x.changed + r.changed,
          failed: x.failed + r.failed,
          skipped: x.skipped + r.skipped,
          unreachable: x.unreachable + r.unreachable,
          ignored: x.ignored + r.ignored,
          rescued: (x.rescued ?? 0) + (r.rescued ?? 0),
        }
      : r
  }
  return {
    recap,
    tasks: [...a.tasks, ...b.tasks],
    warnings: [...a.warnings, ...b.warnings],
    durationMs: a.durationMs + b.durationMs,
    check: a.check,
    aborted: a.aborted ?? b.aborted,
    stats: {...a.stats, ...b.stats},
    exitCode: Math.max(a.exitCode, b.exitCode),
  }
}

export function readJsonFile(p: string): unknown {
  return JSON.parse(readFileSync(p, 'utf8'))
}

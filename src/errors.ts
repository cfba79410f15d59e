// One error class per kind of failure. Each carries where it happened (file/line or
// host/task) and a hint, so the CLI can print "what, where, how to fix" and pick an
// exit code without parsing messages.

export interface ErrorWhere {
  file?: string
  line?: number
  col?: number
  host?: string
  task?: string
}

export const EXIT = {
  ok: 0,
  failed: 2,
  unreachable: 4,
  usage: 5,
  interrupted: 130,
} as const

/** What to do about it: one action, or several the user picks from. */
export type Hint = string | readonly string[]

/** A hint on one line (records, recaps): several actions joined with "; or ". */
export function hintText(hint: Hint | undefined): string {
  return hint === undefined ? '' : typeof hint === 'string' ? hint : hint.join('; or ')
}

// The innermost cause's message, when the message does not already carry it.
function causeText(error: Error): string {
  const seen = new Set<unknown>()
  let c: unknown = error.cause
  let last = ''
  while (c !== undefined && c !== null && !seen.has(c)) {
    seen.add(c)
    last = c instanceof Error ? c.message : String(c)
    c = c instanceof Error ? c.cause : undefined
  }
  return last && !error.message.includes(last) ? last : ''
}

export class BaremetalError extends Error {
  code = 'BAREMETAL_ERROR'
  exitCode: number = EXIT.failed
  where: ErrorWhere
  /** One line (several actions joined); `actions` keeps them apart. */
  hint?: string
  actions?: readonly string[]

  constructor(message: string, opts: {where?: ErrorWhere; hint?: Hint; cause?: unknown} = {}) {
    super(message, opts.cause === undefined ? undefined : {cause: opts.cause})
    this.name = new.target.name
    this.where = opts.where ?? {}
    this.hint = opts.hint === undefined ? undefined : hintText(opts.hint)
    if (Array.isArray(opts.hint)) this.actions = [...opts.hint]
  }

  // "file:line:col: message" is what editors and terminals can jump to.
  location(): string {
    const w = this.where
    const parts: string[] = []
    if (w.file) parts.push(`${w.file}${w.line ? `:${w.line}${w.col ? `:${w.col}` : ''}` : ''}`)
    if (w.host) parts.push(`host ${w.host}`)
    if (w.task) parts.push(`task "${w.task}"`)
    return parts.join(', ')
  }

  describe(): string {
    const loc = this.location()
    let s = loc ? `${loc}: ${this.message}` : this.message
    const cause = causeText(this)
    if (cause) s += `\n  cause: ${cause}`
    if (this.actions && this.actions.length > 1) s += `\n  fix, one of:${this.actions.map((h) => `\n    - ${h}`).join('')}`
    else if (this.hint) s += `\n  hint: ${this.hint}`
    return s
  }

  toJSON(): Record<string, unknown> {
    const cause = causeText(this)
    return {error: this.name, code: this.code, message: this.message, ...this.where, hint: this.hint, ...(this.actions ? {actions: this.actions} : {}), ...(cause ? {cause} : {})}
  }
}

/** Input the user wrote is wrong (YAML, schema, variables): nothing ran. */
export class InputError extends BaremetalError {
  override code = 'INPUT'
  override exitCode: number = EXIT.usage
}

export class InventoryError extends InputError {
  override code = 'INVENTORY'
}

export class PlaybookError extends InputError {
  override code = 'PLAYBOOK'
}

export class TemplateError extends InputError {
  override code = 'TEMPLATE'
}

/** The host could not be reached or authenticated. */
export class UnreachableError extends BaremetalError {
  override code = 'UNREACHABLE'
  override exitCode: number = EXIT.unreachable
}

export class AuthError extends UnreachableError {
  override code = 'AUTH'
}

export class HostKeyError extends UnreachableError {
  override code = 'HOST_KEY'
}

/** A task ran and failed on a host. */
export class TaskError extends BaremetalError {
  override code = 'TASK'
}

export class CommandError extends TaskError {
  override code = 'COMMAND'
}

export class ClusterError extends BaremetalError {
  override code = 'CLUSTER'
}

// Why before what: a bare exit code means little to a person reading a recap.
export function exitCodeMeaning(code: number | null, signal?: string | null): string {
  if (signal) return `killed by signal ${signal}`
  if (code === null) return 'no exit status (connection lost?)'
  switch (code) {
    case 0:
      return 'success'
    case 1:
      return 'general error'
    case 2:
      return 'misuse or invalid arguments'
    case 124:
      return 'timed out'
    case 126:
      return 'not executable or permission denied'
    case 127:
      return 'command not found'
    case 130:
      return 'interrupted'
    case 137:
      return 'killed (SIGKILL, maybe out of memory)'
    case 143:
      return 'terminated (SIGTERM)'
    default:
      return code > 128 ? `killed by signal ${code - 128}` : 'failed'
  }
}

// File modes as Ansible takes them: octal ('0644', 644 as a YAML number is refused by the
// modules: it is decimal) or symbolic ('u+x', 'u=rw,g=r,o=', 'a-X', 'g=u'), applied the way
// Ansible's module_utils applies them (_symbolic_mode_to_octal): clause by clause, each on
// the mode the previous one left. A symbolic mode needs the current mode, so it is resolved
// against the facts; pure, so `--check` says exactly what would change.

const PERM_BITS = 0o7777
const EXEC_BITS = 0o111
const USERS = /^[ugo]+$/
const PERMS = /^[rwxXstugo]*$/

/** '0644' / '644' / '0o644' as an octal number, or null when it is not one. */
export function octalMode(spec: string): number | null {
  const m = /^(?:0o?)?([0-7]{3,4})$/.exec(spec.trim())
  return m ? Number.parseInt(m[1], 8) : null
}

/** Why `spec` is neither an octal nor a symbolic mode ('' when it is one of them). */
export function modeProblem(spec: string): string {
  if (octalMode(spec) !== null) return ''
  for (const clause of spec.split(',')) {
    const users = clause.split(/[+=-]/)[0]
    if (
      !/[+=-]/.test(clause) ||
      (users !== '' && users !== 'a' && !USERS.test(users)) ||
      !clause
        .slice(users.length)
        .split(/[+=-]/)
        .slice(1)
        .every((p) => PERMS.test(p))
    ) {
      return `mode "${spec}" is neither octal (write it quoted, e.g. '0644') nor symbolic (like u+x, u=rw,g=r,o=): bad clause "${clause}"`
    }
  }
  return ''
}

/**
 * The permission bits `spec` leaves on a file whose permission bits are `prev`.
 * `umask` applies to clauses without users ('+x'), as in Ansible and chmod.
 */
export function applyMode(prev: number, spec: string, isDir: boolean, umask = 0o022): number {
  const octal = octalMode(spec)
  if (octal !== null) return octal
  const problem = modeProblem(spec)
  if (problem) throw new Error(problem)
  let mode = prev & PERM_BITS
  for (const clause of spec.split(',')) {
    const ops = clause.match(/[+=-]/g) ?? []
    const [who, ...perms] = clause.split(/[+=-]/)
    const useUmask = who === ''
    const users = who === '' || who === 'a' ? 'ugo' : who
    perms.forEach((p, i) => {
      for (const u of users) mode = applyOp(u, ops[i], bitsFor(u, p, mode, isDir, useUmask ? umask : 0), mode)
    })
  }
  return mode
}

const SHIFT: Record<string, number> = {u: 6, g: 3, o: 0}
const SPECIAL: Record<string, {s: number; t: number}> = {u: {s: 0o4000, t: 0}, g: {s: 0o2000, t: 0}, o: {s: 0, t: 0o1000}}

// The bits one perm string means for one user class, read from `mode` for copies (g=u).
function bitsFor(user: string, perms: string, mode: number, isDir: boolean, umask: number): number {
  const shift = SHIFT[user]
  const keep = (bits: number) => bits & ~umask
  const x = isDir || (mode & EXEC_BITS) > 0
  let out = 0
  for (const p of perms) {
    if (p === 'r') out |= keep(4 << shift)
    else if (p === 'w') out |= keep(2 << shift)
    else if (p === 'x') out |= keep(1 << shift)
    else if (p === 'X') out |= x ? 1 << shift : 0
    else if (p === 's' || p === 't') out |= SPECIAL[user][p]
    else out |= ((mode >> SHIFT[p]) & 7) << shift
  }
  return out
}

function applyOp(user: string, op: string, bits: number, mode: number): number {
  if (op === '+') return mode | bits
  if (op === '-') return mode & ~bits
  const mask = (7 << SHIFT[user]) | SPECIAL[user].s | SPECIAL[user].t
  return (mode & ~mask) | bits
}

/** '0755' */
export const fmtMode = (mode: number): string => `0${(mode & PERM_BITS).toString(8).padStart(3, '0')}`

/** A module's `mode` argument: octal, or symbolic to resolve against the file's current mode. */
export interface ModeArg {
  mode?: number
  symbolicMode?: string
}

/** The coerced argument (a number, an octal string or a symbolic string); throws with the fix. */
export function modeArg(v: unknown): ModeArg {
  if (v === undefined || v === null || v === '') return {}
  if (typeof v === 'number') return {mode: v}
  const s = String(v).trim()
  const octal = octalMode(s)
  if (octal !== null) return {mode: octal}
  const problem = modeProblem(s)
  if (problem) throw new Error(problem)
  return {symbolicMode: s}
}

/**
 * The want with a symbolic mode resolved (pure, from the facts): against the file's current
 * mode, or against the mode a new one gets (0644 / 0755 under umask 022) when it is missing.
 */
export function withMode<T extends ModeArg>(w: T, current: number | undefined, fresh: number, isDir: boolean): T {
  if (w.symbolicMode === undefined) return w
  return {...w, mode: applyMode(current ?? fresh, w.symbolicMode, isDir)}
}

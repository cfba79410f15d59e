import type {Transport} from '../transport/types.js'

// The module contract (see shared/design/STYLE.md): an argument schema checked when
// the playbook loads, facts gathered in one round trip per host per task for all loop
// items, a pure plan, then apply only what the plan says.

export type ArgType = 'string' | 'int' | 'bool' | 'list' | 'dict' | 'mode' | 'path' | 'any'

export interface ArgSpec {
  type: ArgType
  required?: boolean
  choices?: readonly string[]
  default?: unknown
  aliases?: readonly string[]
  /** Value is never printed (masked in output and diffs). */
  secret?: boolean
  /** Relative paths are resolved against the playbook's directory on the controller. */
  controllerPath?: boolean
  /** Accepted by Ansible, not here: any value but false/no fails at load with this hint (what to write instead). */
  unsupported?: string
}

export interface HostFacts {
  /** Remote user's home, used to expand `~`. */
  home: string
  user: string
  os: string
  arch: string
  cores: number
  memMb: number
  /** The controller's address as this host sees it (SSH_CLIENT), e.g. for firewall rules. */
  controllerIp?: string
  /** Ansible's facts without the ansible_ prefix (hostname, os_family, default_ipv4, …): see src/play/facts.ts. */
  ansible?: Record<string, unknown>
}

export interface ModuleContext {
  host: string
  /** The address the controller uses for this host (ansible_host or the name). */
  address: string
  transport: Transport
  facts: HostFacts
  check: boolean
  diff: boolean
  /** All variables of this host (inventory < play < extra vars). */
  vars: Record<string, unknown>
  /** Directory of the playbook file: relative `src` paths resolve against it. */
  playbookDir: string
  /** A role's task: its templates/ or files/ (then the role dir, its tasks/) are searched first for relative `src`. */
  roleDir?: string
  /** Strings that must never be printed. */
  secrets: Set<string>
  /** -v count (debug's verbosity threshold). */
  verbosity?: number
  /** Progress line for long steps (builds). */
  log(msg: string): void
  /** Aborted when the user interrupts: stop starting new work. */
  signal: AbortSignal
  /** Every host of the play that is still up (for runOnce modules such as redis_cluster). */
  playHosts: PlayHost[]
  /**
   * Every host the play names, before --limit and whatever failed: a cluster step must see
   * the whole cluster even when only some hosts' tasks run. No transport: reach them over Redis.
   */
  groupHosts?: GroupHost[]
  /** Hosts of the play that failed or were unreachable so far (a cluster must not form over a partial set unless asked). */
  failedHosts?: string[]
}

export interface GroupHost {
  host: string
  address: string
  vars: Record<string, unknown>
}

export interface PlayHost {
  host: string
  address: string
  vars: Record<string, unknown>
  facts: HostFacts
  transport: Transport
}

export interface FileDiff {
  path: string
  before: string
  after: string
}

export type ItemStatus = 'ok' | 'changed' | 'failed' | 'skipped'

export interface ItemResult {
  status: ItemStatus
  /** Why: "already present", "would create", the failure reason. */
  msg?: string
  diff?: FileDiff[]
  rc?: number | null
  stdout?: string
  stderr?: string
  /** Anything else a `register:` user may read. */
  data?: Record<string, unknown>
  /** Lines the recap repeats at the end (a data loss that was allowed, say). */
  warnings?: string[]
  /** Host variables this result sets for later tasks (set_fact), above play vars. */
  facts?: Record<string, unknown>
}

/** One loop item after templating and argument validation. */
export interface TaskItem {
  args: Record<string, unknown>
  item?: unknown
  /** Every variable this item sees (the loop variable too): for modules that evaluate expressions (assert, debug var). */
  vars?: Record<string, unknown>
}

export interface ModuleSpec {
  name: string
  /** One line for the README's module reference. */
  description: string
  args: Record<string, ArgSpec>
  /** `command: echo hi` style: the string is stored in args[freeForm]. */
  freeForm?: string
  /** Arguments are the user's own names (set_fact): checked by this at load instead of against args; returns why they are bad. */
  freeArgs?(args: Record<string, unknown>): {msg: string; hint: string} | undefined
  /** Whether the module can plan without changing anything. */
  checkMode: boolean
  /** Modules like redis_cluster run once for the play (on the first host's context), not per host. */
  runOnce?: boolean
  /** Returns one result per item, in order. Must not throw for per-item failures. */
  run(ctx: ModuleContext, items: TaskItem[]): Promise<ItemResult[]>
}

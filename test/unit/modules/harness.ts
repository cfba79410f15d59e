// Shared by the module tests under test/unit/modules/ (a helper, not a test file): a ModuleContext over a
// LocalTransport whose "home" is a fresh temp directory, and a round-trip counter.

import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {LocalTransport} from '../../../src/transport/local.js'
import type {ItemResult, ModuleContext, ModuleSpec, TaskItem} from '../../../src/modules/types.js'

export interface TestContext extends ModuleContext {
  transport: LocalTransport
}

export async function tempDir(prefix = 'bm-mod-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix))
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, {recursive: true, force: true})
}

export function context(home: string, opts: Partial<Pick<ModuleContext, 'check' | 'diff' | 'vars' | 'playbookDir' | 'secrets'>> = {}): TestContext {
  const transport = new LocalTransport('local')
  const facts = {home, user: process.env.USER ?? 'root', os: 'linux', arch: process.arch, cores: 2, memMb: 1024}
  return {
    host: 'local',
    address: '127.0.0.1',
    transport,
    facts,
    check: opts.check ?? false,
    diff: opts.diff ?? false,
    vars: opts.vars ?? {},
    playbookDir: opts.playbookDir ?? home,
    secrets: opts.secrets ?? new Set(),
    log: () => {},
    signal: new AbortController().signal,
    playHosts: [],
  }
}

/** Exec + upload calls made so far: the unit of cost the modules promise to bound. */
export function roundTrips(ctx: TestContext): number {
  return ctx.transport.stats.execs + ctx.transport.stats.uploads
}

/** Run a module once and return its results and how many round trips it cost. */
export async function runModule(mod: ModuleSpec, ctx: TestContext, items: TaskItem[]): Promise<{results: ItemResult[]; trips: number}> {
  const before = roundTrips(ctx)
  const results = await mod.run(ctx, items)
  return {results, trips: roundTrips(ctx) - before}
}

export function statuses(results: ItemResult[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const r of results) out[r.status] = (out[r.status] ?? 0) + 1
  return out
}

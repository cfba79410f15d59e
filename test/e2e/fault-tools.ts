// Helpers of the fault and security e2e suites: a Redis build shared by their fleets,
// a CLI run that can be watched and signalled while it works, and the processes and
// SSH sessions of one test host.
import {execFile, spawn} from 'node:child_process'
import {createHash} from 'node:crypto'
import {existsSync, mkdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import type {Fleet, TestHost} from '../harness/fleet.js'
import {BIN, cli, ROOT, show, type CliResult} from './cli.js'
import {redisArgs, redisTarball, redisVersion} from './redis-fleet.js'

const BUILD_CACHE = process.env.BAREMETAL_TEST_BUILD_CACHE ?? '/var/cache/baremetal-test-build'

/**
 * Build Redis once per machine, with the product itself (`up --tags build` on one host),
 * into a directory every test host sees (the hosts share the filesystem outside /root
 * and /tmp), and return the variables that point `up` at it. These suites test faults
 * and security, not the build: every host then finds the build in place (the build
 * marker matches) instead of compiling for minutes on a shared 2-core machine.
 */
export async function sharedRedisBuild(fleet: Fleet, host: TestHost, src = {tarball: redisTarball(), version: redisVersion()}): Promise<Record<string, string>> {
  const makeArgs = 'MALLOC=libc BUILD_TLS=no'
  const key = createHash('sha256').update(`${src.version} ${makeArgs}`).digest('hex').slice(0, 12)
  const dir = join(BUILD_CACHE, `redis-${src.version}-${key}`)
  const vars = {redis_src_dir: join(dir, 'src'), redis_bin_dir: join(dir, 'bin')}
  const ready = () => existsSync(join(vars.redis_bin_dir, '.baremetal-build')) && existsSync(join(vars.redis_bin_dir, 'redis-server'))
  mkdirSync(BUILD_CACHE, {recursive: true})
  const lock = `${dir}.lock`
  const deadline = Date.now() + 20 * 60_000
  for (;;) {
    try {
      mkdirSync(lock)
      writeFileSync(join(lock, 'pid'), String(process.pid))
      break
    } catch {
      // A lock whose owner died is stale.
      let owner = 0
      try {
        owner = Number(readFileSync(join(lock, 'pid'), 'utf8'))
      } catch {}
      if (owner && !alive(owner)) rmSync(lock, {recursive: true, force: true})
      if (Date.now() > deadline) throw new Error(`waited 20 min for ${lock}`)
      await sleep(2000)
    }
  }
  try {
    // Always through `up --tags build` on one host, under the lock: with the cache in
    // place it is a no-op, and it refreshes a cache whose build markers an older
    // version wrote, before several hosts could start rebuilding into the same directory.
    const inv = fleet.writeInventory({hosts: [host], path: join(fleet.dir, 'build.yml')})
    const r = await cli(['up', '-i', inv, ...redisArgs({redis_version: src.version, redis_source: src.tarball, ...vars}), '--tags', 'build'], {timeoutMs: 20 * 60_000})
    if (r.code !== 0 || !ready()) throw new Error(`shared Redis build failed\n${show(r)}`)
    return vars
  } finally {
    rmSync(lock, {recursive: true, force: true})
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

export interface LiveCli {
  pid: number
  /** Everything printed so far. */
  stdout(): string
  stderr(): string
  /** Resolves when stdout matches (rejects after timeoutMs or if the run ends first). */
  waitFor(re: RegExp, timeoutMs?: number): Promise<void>
  signal(sig: NodeJS.Signals): void
  /** The finished run, with its wall-clock duration. */
  result: Promise<CliResult & {ms: number}>
}

/** Start `baremetal ARGS…` and return while it runs, to act on it mid-way. */
export function startCli(args: string[], opts: {env?: Record<string, string>; timeoutMs?: number} = {}): LiveCli {
  const t0 = Date.now()
  const child = spawn(process.execPath, [BIN, ...args], {cwd: ROOT, env: {...process.env, ...opts.env}, stdio: ['ignore', 'pipe', 'pipe']})
  let out = ''
  let err = ''
  let ended = false
  const waiters: Array<() => void> = []
  child.stdout.on('data', (d) => {
    out += d
    for (const w of [...waiters]) w()
  })
  child.stderr.on('data', (d) => (err += d))
  const result = new Promise<CliResult & {ms: number}>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`baremetal ${args.join(' ')} did not finish in ${opts.timeoutMs ?? 600_000} ms\n${out.slice(-3000)}\n${err.slice(-2000)}`))
    }, opts.timeoutMs ?? 600_000)
    child.on('close', (code) => {
      clearTimeout(timer)
      ended = true
      for (const w of [...waiters]) w()
      let json: unknown
      if (args.includes('--json')) {
        try {
          json = JSON.parse(out)
        } catch {}
      }
      resolve({code, stdout: out, stderr: err, json, ms: Date.now() - t0})
    })
  })
  return {
    pid: child.pid!,
    stdout: () => out,
    stderr: () => err,
    waitFor(re, timeoutMs = 300_000) {
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          done()
          reject(new Error(`no ${re} in output after ${timeoutMs} ms:\n${out.slice(-3000)}\n${err.slice(-2000)}`))
        }, timeoutMs)
        const check = () => {
          if (re.test(out)) {
            done()
            resolve()
          } else if (ended) {
            done()
            reject(new Error(`the run ended without ${re}:\n${out.slice(-3000)}\n${err.slice(-2000)}`))
          }
        }
        const done = () => {
          clearTimeout(timer)
          const i = waiters.indexOf(check)
          if (i >= 0) waiters.splice(i, 1)
        }
        waiters.push(check)
        check()
      })
    },
    signal: (sig) => {
      if (!ended) child.kill(sig)
    },
    result,
  }
}

function run(cmd: string, args: string[]): Promise<{code: number; stdout: string; stderr: string}> {
  return new Promise((resolve) => {
    execFile(cmd, args, {encoding: 'utf8'}, (error, stdout, stderr) => {
      resolve({code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr})
    })
  })
}

/** Command lines of the processes inside a test host's network namespace. */
export async function hostProcesses(host: TestHost): Promise<string[]> {
  const r = await run('ip', ['netns', 'pids', host.netns])
  const out: string[] = []
  for (const pid of r.stdout.split(/\s+/).filter(Boolean)) {
    try {
      out.push(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim())
    } catch {}
  }
  return out
}

/** Drop every SSH connection to a host from its side: its sshd session processes die. */
export async function dropSshSessions(fleet: Fleet, host: TestHost): Promise<number> {
  const r = await fleet.nsExec(host, "ss -Htnp state established '( sport = :22 )'")
  const pids = [...new Set([...r.stdout.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1])))]
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {}
  }
  return pids.length
}

/** The bridge-side end of a host's link: shaping its egress slows what the controller sends. */
export function hostVeth(fleet: Fleet, host: TestHost): string {
  return `${fleet.name}v${host.name.replace(/^h/, '')}`
}

/** Limit what the controller sends to a host to `rate` (tc tbf); undefined removes it. */
export async function shapeLink(fleet: Fleet, host: TestHost, rate?: string): Promise<void> {
  const dev = hostVeth(fleet, host)
  if (rate === undefined) {
    await run('tc', ['qdisc', 'del', 'dev', dev, 'root'])
    return
  }
  const r = await run('tc', ['qdisc', 'replace', 'dev', dev, 'root', 'tbf', 'rate', rate, 'burst', '32kb', 'latency', '2s'])
  if (r.code !== 0) throw new Error(`tc on ${dev}: ${r.stderr}`)
}

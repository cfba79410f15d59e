// Running one tool invocation the same way for every side of a benchmark: wall time,
// the CPU of the whole process tree (user + system, from /usr/bin/time, which waits for
// every child), and the controller's peak memory as the summed PSS of the live process
// tree, sampled every 100 ms (a sum of RSS would count the pages Ansible's forked
// workers share several times over).
import {spawn} from 'node:child_process'
import {closeSync, openSync, readFileSync, readdirSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

const TIME = '/usr/bin/time'
const SAMPLE_MS = 100

// Descendants through /proc/<pid>/task/<tid>/children (no scan of all of /proc).
function tree(root) {
  const out = []
  const queue = [root]
  while (queue.length) {
    const pid = queue.shift()
    out.push(pid)
    let tasks = []
    try { tasks = readdirSync(`/proc/${pid}/task`) } catch { continue }
    for (const t of tasks) {
      try {
        for (const c of readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').split(' ')) if (c.trim()) queue.push(Number(c))
      } catch {}
    }
  }
  return out
}

function pssKb(pid) {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))
    return m ? Number(m[1]) : 0
  } catch {
    return 0
  }
}

/**
 * Run cmd with args; resolves {code, wallS, userS, sysS, maxRssKb, peakPssKb, peakProcs,
 * stdout, stderr}. stdout/stderr are read from files (a daemon a tool leaves behind must
 * not keep a pipe open). Never rejects for a non-zero exit; `timeoutS` kills the tree.
 */
export function measure(cmd, args, {env, cwd, timeoutS, stdoutFile} = {}) {
  const dir = join(tmpdir(), `bm-bench-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`)
  const timeFile = `${dir}.time`
  const outFile = stdoutFile ?? `${dir}.out`
  const errFile = `${dir}.err`
  const out = openSync(outFile, 'w')
  const err = openSync(errFile, 'w')
  const started = process.hrtime.bigint()
  const child = spawn(TIME, ['-f', '%e %U %S %M', '-o', timeFile, cmd, ...args], {
    env: {...process.env, ...env}, cwd, stdio: ['ignore', out, err], detached: true,
  })
  let peakPssKb = 0
  let peakProcs = 0
  const sample = () => {
    if (!child.pid) return
    const pids = tree(child.pid)
    let sum = 0
    for (const p of pids) sum += pssKb(p)
    if (sum > peakPssKb) peakPssKb = sum
    if (pids.length > peakProcs) peakProcs = pids.length
  }
  const timer = setInterval(sample, SAMPLE_MS)
  let killer
  let timedOut = false
  if (timeoutS) {
    killer = setTimeout(() => {
      timedOut = true
      // Our own child's process group: the tool and everything it forked.
      try { process.kill(-child.pid, 'SIGTERM') } catch {}
      setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL') } catch {} }, 5000).unref()
    }, timeoutS * 1000)
  }
  return new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', (code) => {
      const wallS = Number(process.hrtime.bigint() - started) / 1e9
      clearInterval(timer)
      if (killer) clearTimeout(killer)
      closeSync(out)
      closeSync(err)
      let t = []
      try { t = readFileSync(timeFile, 'utf8').trim().split('\n').pop().split(' ').map(Number) } catch {}
      const res = {
        code, timedOut, wallS,
        userS: t[1] ?? NaN, sysS: t[2] ?? NaN, maxRssKb: t[3] ?? NaN, peakPssKb, peakProcs,
        stdout: readFileSync(outFile, 'utf8'), stderr: readFileSync(errFile, 'utf8'),
      }
      for (const f of [timeFile, errFile, ...(stdoutFile ? [] : [outFile])]) rmSync(f, {force: true})
      resolve(res)
    })
  })
}

export function median(xs) {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (s.length === 0) return NaN
  const m = Math.floor(s.length / 2)
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

export function loadavg() {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number)
}

// Runs the compiled tests with node's test runner: unit (pure code, seconds), e2e (the
// real CLI against real sshd test hosts in network namespaces; needs root), and the e2e
// suites that must hold on our users' Redis 5.0.3 again on it (../shared/redis).
//
// e2e files run in BAREMETAL_TEST_LANES lanes (default 2) pulling from one queue, longest
// first: most of an e2e file's time is waiting on Redis, Sentinel and SSH, not CPU, so two
// at once roughly halve the wall time on this 2-core machine (CI must stay near 40 min).
// Each file's output is printed whole when it ends, never interleaved. BAREMETAL_TEST_LANES=1
// runs them one at a time.
import {spawn, spawnSync} from 'node:child_process'
import {readdirSync, existsSync} from 'node:fs'
import {basename, resolve} from 'node:path'

const which = process.argv[2] ?? 'all'
// Recursive: unit tests mirror src/ (test/unit/modules/…, test/unit/redis/…).
const files = (dir) =>
  existsSync(dir)
    ? readdirSync(dir, {recursive: true})
        .filter((f) => f.endsWith('.test.js'))
        .sort()
        .map((f) => `${dir}/${f}`)
    : []
const only = process.env.TEST_ONLY ? new RegExp(process.env.TEST_ONLY) : null
const pick = (list) => (only ? list.filter((f) => only.test(f)) : list)
// On 5.0.3 again: the main `up` e2e, the durability (safety) suites, the formation's
// one-parameter CONFIG SETs, and the Sentinel + HAProxy e2e with HAProxy's health checks
// (their replies and SENTINEL spellings differ). The upgrade e2e starts on 5.0.3 by itself.
const ON_503 = /\/(up|durability|durability-persist|durability-placement|formation-timeout|sentinel-haproxy|haproxy)\.test\.js$/
const REDIS_503 = resolve('../shared/redis/redis-5.0.3.tar.gz')
// Seconds each file took in the last full CI run: the queue starts with the longest so the
// lanes end together. A new file counts as 60 s.
const WEIGHT = {
  'durability-scale': 205,
  lifecycle: 176,
  durability: 170,
  scaling: 148,
  'legacy-playbook': 124,
  faults: 124,
  backup: 104,
  up: 100,
  sentinel: 82,
  upgrade: 74,
  'sentinel-ops': 68,
  'ansible-compat': 56,
  load: 56,
  'durability-persist': 57,
  'build-once': 47,
  'isolation-input': 45,
  'sentinel-haproxy': 39,
  'isolation-pidfile': 38,
  security: 43,
  'formation-timeout': 34,
  'durability-placement': 28,
  foundation: 50,
  haproxy: 25,
  'isolation-clusters': 37,
}
// Files that bind fixed loopback port ranges of the root namespace: one lane runs them all.
const LOOPBACK = /\/(redis-cluster-local|redis-host-local|play-structure|ansible-compat|haproxy)\.test\.js$/
const lanes = Math.max(1, Number(process.env.BAREMETAL_TEST_LANES ?? 2))

let code = 0
// One style (.prettierrc.json), checked with the fast suite: a file it would change fails.
if (which === 'unit' || which === 'all') {
  const r = spawnSync(process.execPath, ['node_modules/prettier/bin/prettier.cjs', '--check', 'src/**/*.ts', 'test/**/*.ts', 'scripts/*.mjs'], {stdio: 'inherit'})
  code ||= r.status ?? 1
}
if (which === 'unit' || which === 'all') {
  const r = spawnSync(process.execPath, ['--test', ...pick(files('dist/test/unit'))], {stdio: 'inherit'})
  code ||= r.status ?? 1
}

const jobs = []
if (which === 'e2e' || which === 'all') for (const f of pick(files('dist/test/e2e'))) jobs.push({file: f, redis: '7.0.15', env: {}})
if (which === 'e2e' || which === 'all' || which === 'e2e-503') {
  if (existsSync(REDIS_503)) for (const f of pick(files('dist/test/e2e')).filter((f) => ON_503.test(f))) jobs.push({file: f, redis: '5.0.3', env: {BAREMETAL_REDIS_TARBALL: REDIS_503}})
  else {
    console.error(`Redis 5.0.3 source not found at ${REDIS_503}: the 5.0.3 e2e pass cannot run`)
    code ||= 1
  }
}
const weight = (j) => WEIGHT[basename(j.file, '.test.js')] ?? 60
jobs.sort((a, b) => weight(b) - weight(a))

const started = Date.now()
const secs = (t) => ((Date.now() - t) / 1000).toFixed(0)
const results = []

function runFile(job, lane) {
  return new Promise((done) => {
    const t = Date.now()
    console.log(`▶ [lane ${lane}, ${secs(started)} s] ${job.file} on Redis ${job.redis}`)
    const child = spawn(process.execPath, ['--test', '--test-reporter=tap', job.file], {env: {...process.env, ...job.env}})
    const out = []
    child.stdout.on('data', (d) => out.push(d))
    child.stderr.on('data', (d) => out.push(d))
    child.on('close', (status) => {
      const text = Buffer.concat(out).toString()
      const ok = status === 0
      console.log(`${'─'.repeat(8)} ${job.file} on Redis ${job.redis}: ${ok ? 'ok' : `FAILED (exit ${status})`} in ${secs(t)} s (lane ${lane})\n${text}`)
      results.push({...job, ok, secs: Number(secs(t)), text})
      done()
    })
  })
}

async function lane(n) {
  for (;;) {
    // Lane 0 alone takes the loopback files; every lane takes the rest, longest first.
    const i = jobs.findIndex((j) => n === 0 || !LOOPBACK.test(j.file))
    if (i < 0) return
    const [job] = jobs.splice(i, 1)
    await runFile(job, n)
  }
}

await Promise.all(Array.from({length: jobs.length ? lanes : 0}, (_, n) => lane(n)))
const failed = results.filter((r) => !r.ok)
if (results.length) {
  const count = (re) => results.reduce((s, r) => s + Number(r.text.match(re)?.[1] ?? 0), 0)
  console.log(`e2e: ${results.length} files, ${count(/^# pass (\d+)/m)} passed, ${count(/^# fail (\d+)/m)} failed, ${secs(started)} s in ${lanes} lane(s)`)
  for (const r of failed) console.log(`FAILED: ${r.file} on Redis ${r.redis} (${r.secs} s)`)
}
if (failed.length) code ||= 1
process.exit(code)

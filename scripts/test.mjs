// Runs the compiled tests with node's test runner: unit (pure code, seconds), e2e (the
// real CLI against real sshd test hosts in network namespaces; needs root), then the e2e
// suites that must hold on our users' Redis 5.0.3 again on it (../shared/redis).
import {spawnSync} from 'node:child_process'
import {readdirSync, existsSync} from 'node:fs'
import {resolve} from 'node:path'

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
// The main `up` e2e, the durability (safety) suites and instance identity (Redis 5.0 reports
// config_file differently) run on both versions, and the Sentinel topology and HAProxy's health
// checks (their replies and SENTINEL spellings differ).
const ON_503 = /\/(up|durability[\w-]*|isolation-pidfile|formation-timeout|sentinel|sentinel-ops|sentinel-haproxy|sentinel-scale|haproxy)\.test\.js$/
const REDIS_503 = resolve('../shared/redis/redis-5.0.3.tar.gz')
let code = 0
const run = (list, env = {}) => {
  if (list.length === 0) return
  // e2e files share this machine's CPU and namespaces: one file at a time.
  const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...list], {stdio: 'inherit', env: {...process.env, ...env}})
  code ||= r.status ?? 1
}
// One style (.prettierrc.json), checked with the fast suite: a file it would change fails.
if (which === 'unit' || which === 'all') {
  const r = spawnSync(process.execPath, ['node_modules/prettier/bin/prettier.cjs', '--check', 'src/**/*.ts', 'test/**/*.ts', 'scripts/*.mjs'], {stdio: 'inherit'})
  code ||= r.status ?? 1
}
if (which === 'unit' || which === 'all') {
  const r = spawnSync(process.execPath, ['--test', ...pick(files('dist/test/unit'))], {stdio: 'inherit'})
  code ||= r.status ?? 1
}
if (which === 'e2e' || which === 'all') run(pick(files('dist/test/e2e')))
if (which === 'e2e' || which === 'all' || which === 'e2e-503') {
  if (existsSync(REDIS_503))
    run(
      pick(files('dist/test/e2e')).filter((f) => ON_503.test(f)),
      {BAREMETAL_REDIS_TARBALL: REDIS_503},
    )
  else {
    console.error(`Redis 5.0.3 source not found at ${REDIS_503}: the 5.0.3 e2e pass cannot run`)
    code ||= 1
  }
}
process.exit(code)

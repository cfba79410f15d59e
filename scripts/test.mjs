// Runs the compiled tests with node's test runner: unit (pure code, seconds), e2e (the
// real CLI against real sshd test hosts in network namespaces; needs root).
import {spawnSync} from 'node:child_process'
import {readdirSync, existsSync} from 'node:fs'

const which = process.argv[2] ?? 'all'
const files = (dir) => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.test.js')).sort().map((f) => `${dir}/${f}`) : [])
const only = process.env.TEST_ONLY ? new RegExp(process.env.TEST_ONLY) : null
const pick = (list) => (only ? list.filter((f) => only.test(f)) : list)
let code = 0
if (which === 'unit' || which === 'all') {
  const r = spawnSync(process.execPath, ['--test', ...pick(files('dist/test/unit'))], {stdio: 'inherit'})
  code ||= r.status ?? 1
}
if (which === 'e2e' || which === 'all') {
  // e2e files share this machine's CPU and namespaces: one file at a time.
  const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...pick(files('dist/test/e2e'))], {stdio: 'inherit'})
  code ||= r.status ?? 1
}
process.exit(code)

#!/usr/bin/env node
// `npm run bench -- NAME [ARGS…]` runs bench/NAME.mjs (after `npm run build`); without a
// name it lists the benchmarks. See bench/README.md for what each measures.
import {spawnSync} from 'node:child_process'
import {readdirSync, readFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

const BENCH = dirname(fileURLToPath(import.meta.url))
const names = readdirSync(BENCH).filter((f) => f.endsWith('.mjs') && f !== 'run.mjs').map((f) => f.slice(0, -4)).sort()
const [name, ...args] = process.argv.slice(2)
if (!name || !names.includes(name)) {
  if (name) console.error(`no benchmark "${name}"`)
  console.error('usage: npm run bench -- NAME [ARGS…]\n')
  for (const n of names) {
    // The first comment line after the shebang says what it measures.
    const first = readFileSync(join(BENCH, `${n}.mjs`), 'utf8').split('\n').find((l) => l.startsWith('// ')) ?? ''
    console.error(`  ${n.padEnd(20)} ${first.slice(3)}`)
  }
  process.exit(name ? 2 : 0)
}
const r = spawnSync(process.execPath, [join(BENCH, `${name}.mjs`), ...args], {stdio: 'inherit'})
process.exit(r.status ?? 1)

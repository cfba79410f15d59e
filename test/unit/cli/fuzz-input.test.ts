// Malformed and hostile input, property-based: random and mutated inventories, playbooks
// and -e values must end in a typed BaremetalError (exit code ≥ 1, file and line where
// the file has them), never an uncaught exception; the real CLI, spawned on a handful
// of such files, must print "error: …" and never a stack trace.
import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'
import {after, describe, it} from 'node:test'
import {fileURLToPath} from 'node:url'
import fc from 'fast-check'
import {stringify} from 'yaml'
import {BaremetalError, EXIT} from '../../../src/errors.js'
import {loadInventory, selectHosts, type Inventory} from '../../../src/inventory/inventory.js'
import {allModules} from '../../../src/modules/index.js'
import {loadPlaybook} from '../../../src/play/playbook.js'
import {redisArg, renderText} from '../../../src/play/template.js'
import {magicVars, parseExtraVar, resolveVars} from '../../../src/play/vars.js'
import {validateLayout} from '../../../src/redis/validate.js'

const ROOT = resolve(fileURLToPath(import.meta.url), '../../../../..')
const BIN = resolve(ROOT, 'bin/run.js')
const INV = '/fuzz/inventory.yml'
const PB = '/fuzz/site.yml'
const modules = allModules()
const runs = Number(process.env.FUZZ_RUNS ?? 300)

// Valid starting points: every inventory and playbook feature, hosts only on TEST-NET
// addresses (192.0.2.0/24, never routed) so nothing could be reached even by mistake.
const BASE_INVENTORY = `all:
  vars:
    ansible_user: root
    redis_port_start: 7000
    redis_count: 3
    note: "{{ inventory_hostname }} in {{ group_names }}"
  children:
    redis:
      hosts:
        r1: {ansible_host: 192.0.2.1, redis_replicas: 0}
        r[2:3]:
          ansible_host: 192.0.2.2
          ansible_port: 2222
      vars:
        redis_password: "s3cret"
    web:
      children:
        redis:
      hosts:
        w1:
`

const BASE_PLAYBOOK = `- name: site
  hosts: redis
  max_fail_percentage: 30
  vars:
    base: ~/fuzz
    ports: [7000, 7001]
  tasks:
    - name: dirs
      file: path={{ base }}/{{ item }} state=directory mode=0750
      with_sequence: start=7000 count=3
    - name: conf
      template:
        src: t.hbs
        dest: "{{ base }}/{{ item }}/x.conf"
        mode: "0600"
      loop: "{{ ports }}"
      when: item != 7001
    - command: echo {{ quote base }}
      register: out
      changed_when: false
      failed_when: out.rc != 0
    - name: fw
      firewall:
        ports: ["7000:7002"]
        sources: ["192.0.2.0/24"]
      tags: [firewall]
      ignore_errors: yes
`

// Characters and fragments that matter to YAML, Handlebars, the shell and our parsers.
const TOKENS = [
  ':',
  ': ',
  '-',
  '- ',
  '[',
  ']',
  '{',
  '}',
  ',',
  '#',
  '&a ',
  '*a',
  '!!str ',
  '!!binary ',
  '!!map',
  '|',
  '>',
  "'",
  '"',
  '%',
  '@',
  '`',
  '\n',
  '\n  ',
  '\n    - ',
  '\t',
  '  ',
  '{{',
  '}}',
  '{{ x }}',
  '{{#if a}}',
  '{{/if}}',
  '{{> p}}',
  '<<: *a',
  '? ',
  '---\n',
  '...',
  '\u0000',
  '\uFEFF',
  '\u2028',
  'null',
  '~',
  'yes',
  'no',
  '0o7',
  '0644',
  '1e999',
  '-1',
  'NaN',
  'loop',
  'when',
  'hosts',
  'tasks',
  'vars',
  'children',
  'all',
  '__proto__',
  'constructor',
  'r[1:99999]',
  'r[01:3:0]',
  'a[1:3000]b[1:3000]',
  '$(touch /tmp/fuzz-pwned)',
  '; rm -rf /',
  '\\',
  '\r\n',
]

type Mutation = {pos: number; op: 'ins' | 'del' | 'rep'; text: string; len: number}
const mutation: fc.Arbitrary<Mutation> = fc.record({
  pos: fc.nat(),
  op: fc.constantFrom('ins' as const, 'del' as const, 'rep' as const),
  text: fc.oneof(fc.constantFrom(...TOKENS), fc.string({maxLength: 6}), fc.string({unit: 'binary', maxLength: 4})),
  len: fc.integer({min: 1, max: 12}),
})

function mutate(text: string, ms: Mutation[]): string {
  let s = text
  for (const m of ms) {
    const p = s.length === 0 ? 0 : m.pos % (s.length + 1)
    if (m.op === 'ins') s = s.slice(0, p) + m.text + s.slice(p)
    else if (m.op === 'del') s = s.slice(0, p) + s.slice(p + m.len)
    else s = s.slice(0, p) + m.text + s.slice(p + m.len)
  }
  return s
}

// Random YAML documents with the right top-level shape but any values inside.
const yamlValue = fc.letrec((tie) => ({
  value: fc.oneof(
    {depthSize: 'small'},
    fc.string({maxLength: 12}),
    fc.constantFrom(...TOKENS),
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), {maxLength: 4}),
    fc.dictionary(fc.oneof(fc.string({maxLength: 8}), fc.constantFrom('hosts', 'vars', 'children', 'tasks', 'name', 'command', 'file', 'loop', 'when', 'all', 'redis')), tie('value'), {maxKeys: 4}),
  ),
})).value

const text = (base: string) =>
  fc.oneof(
    fc.array(mutation, {minLength: 1, maxLength: 8}).map((ms) => mutate(base, ms)),
    fc.string({maxLength: 200}),
    yamlValue.map((v) => {
      try {
        return stringify(v)
      } catch {
        return String(v)
      }
    }),
    fc.dictionary(fc.constantFrom('all', 'redis', 'web', 'x y', ''), yamlValue, {maxKeys: 3}).map((v) => stringify(v)),
  )

/** Run fn; any throw must be a BaremetalError with an exit code ≥ 1 that names the file. */
function typed<T>(fn: () => T, file?: string): {value?: T; error?: BaremetalError} {
  const t0 = Date.now()
  try {
    return {value: fn()}
  } catch (error) {
    if (!(error instanceof BaremetalError)) {
      assert.fail(`uncaught ${error instanceof Error ? error.stack : String(error)}`)
    }
    assert.ok(error.exitCode >= 1, `exit code ${error.exitCode}`)
    assert.equal(typeof error.message, 'string')
    assert.ok(error.describe().length > 0)
    if (file && error.where.file !== undefined) assert.ok(error.where.file.length > 0)
    if (file && /invalid YAML/.test(error.message) && !/alias|toJS|Excessive/i.test(error.message)) {
      assert.equal(error.where.file, file, `YAML error without its file: ${error.describe()}`)
      assert.ok(error.where.line !== undefined && error.where.line >= 1, `YAML error without a line: ${error.describe()}`)
    }
    return {error}
  } finally {
    // Input must not make loading slow (a range bomb, an alias bomb): bounded work.
    assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`)
  }
}

// What the commands do with an inventory after loading it: patterns, variables, layout.
function useInventory(inv: Inventory, extra: Record<string, unknown>): void {
  for (const pattern of ['all', 'redis', 'redis:&web', 'r*:!w1']) {
    const hosts = typed(() => selectHosts(inv, pattern)).value ?? []
    typed(() => validateLayout(hosts, {redis_port_start: 6379, redis_count: 100, redis_replicas: 0}, extra, inv.file))
    for (const h of hosts.slice(0, 5)) typed(() => resolveVars([h.vars, magicVars(h, inv, hosts)], extra))
  }
}

describe('fuzz: malformed and hostile input gives typed errors, never a crash', () => {
  it('inventories: random, mutated and reshaped', () => {
    fc.assert(
      fc.property(text(BASE_INVENTORY), (src) => {
        const r = typed(() => loadInventory(INV, src), INV)
        if (r.error) assert.ok(r.error.exitCode === EXIT.usage, `inventory errors are usage errors: ${r.error.describe()}`)
        if (r.value) useInventory(r.value, {})
      }),
      {numRuns: runs},
    )
  })

  it('playbooks: random, mutated and reshaped', () => {
    fc.assert(
      fc.property(text(BASE_PLAYBOOK), (src) => {
        const r = typed(() => loadPlaybook(PB, modules, src), PB)
        if (r.error) assert.ok(r.error.exitCode === EXIT.usage, `playbook errors are usage errors: ${r.error.describe()}`)
      }),
      {numRuns: runs},
    )
  })

  it('-e values: key=value, JSON and junk; values are data (never rendered)', () => {
    const readFile = (p: string): Record<string, unknown> => {
      throw new (class extends BaremetalError {})(`cannot read ${p}`, {where: {file: p}})
    }
    const inv = loadInventory(INV, BASE_INVENTORY)
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({maxLength: 40}),
          fc
            .tuple(
              fc.constantFrom('redis_count', 'redis_port_start', 'x', 'redis_password', '_a', '9bad', 'a-b'),
              fc.constantFrom('=', ':', ' = ', '=='),
              fc.oneof(fc.string(), fc.constantFrom(...TOKENS)),
            )
            .map(([k, s, v]) => k + s + v),
          fc.jsonValue().map((v) => JSON.stringify(v)),
          fc.string().map((s) => '@' + s),
        ),
        (arg) => {
          const r = typed(() => parseExtraVar(arg, readFile))
          if (r.value) {
            // -e values are never rendered: {{ … }} inside one stays text.
            for (const [k, v] of Object.entries(r.value)) {
              const vars = typed(() => resolveVars([{}], {[k]: v})).value
              if (vars) assert.deepEqual(vars[k], v)
            }
            useInventory(inv, r.value)
          }
        },
      ),
      {numRuns: runs},
    )
    // A mistyped secret is refused without echoing it.
    fc.assert(
      fc.property(fc.constantFrom('redis_password', 'api_token', 'my_secret'), fc.constantFrom(':', ' ', ' = ', '\t'), fc.constantFrom('hunter2-Zq', 'S3cr3t-Zq!'), (k, sep, v) => {
        const r = typed(() => parseExtraVar(k + sep + v, readFile))
        assert.ok(r.error, 'not key=value')
        assert.ok(!r.error.describe().includes(v), r.error.describe())
      }),
    )
  })

  it('templates: random sources render or fail with a TemplateError', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.constantFrom(...TOKENS), fc.string({maxLength: 5})), {maxLength: 12}).map((a) => a.join('')),
        (src) => {
          typed(() => renderText(src, {x: '{{ y }}', a: [1, 2], item: 7000, redis_password: '{{ x }}'}, {file: 't.hbs'}))
        },
      ),
      {numRuns: runs},
    )
  })

  it('redisarg: any value is one redis.conf argument (no line break, no second directive)', () => {
    fc.assert(
      fc.property(fc.string({unit: 'binary'}), (v) => {
        const q = redisArg(v)
        assert.ok(!/[\r\n]/.test(q), `line break in ${JSON.stringify(q)}`)
        // Unquoted only when it is a plain word; otherwise one "…" token with escapes.
        if (!q.startsWith('"')) assert.match(q, /^[^\s"'\\]+$/)
        else assert.match(q, /^"(?:[^"\\]|\\.)*"$/)
        assert.equal(unquoteRedis(q), v)
      }),
      {numRuns: runs},
    )
  })
})

// redis.conf's reading of one double-quoted token (sdssplitargs), to check round trips.
function unquoteRedis(q: string): string {
  if (!q.startsWith('"')) return q
  let out = ''
  for (let i = 1; i < q.length - 1; i++) {
    const c = q[i]
    if (c !== '\\') {
      out += c
      continue
    }
    const n = q[++i]
    if (n === 'x') {
      out += String.fromCharCode(parseInt(q.slice(i + 1, i + 3), 16))
      i += 2
    } else out += n === 'n' ? '\n' : n === 'r' ? '\r' : n === 't' ? '\t' : n
  }
  return out
}

describe('fuzz: the real CLI on random files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bm-fuzz-'))
  after(() => rmSync(dir, {recursive: true, force: true}))

  function runCli(args: string[]): Promise<{code: number | null; stdout: string; stderr: string}> {
    return new Promise((res) => {
      const child = spawn(process.execPath, [BIN, ...args], {cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: {...process.env, BAREMETAL_REDIS_PASSWORD: ''}})
      let stdout = ''
      let stderr = ''
      child.stdout.on('data', (d) => (stdout += d))
      child.stderr.on('data', (d) => (stderr += d))
      child.on('close', (code) => res({code, stdout, stderr}))
    })
  }

  it('a handful of random inventories, playbooks and -e values: "error: file:line", exit ≥ 1, no stack trace', async () => {
    writeFileSync(join(dir, 't.hbs'), 'x {{ item }}\n')
    const samples = fc.sample(fc.tuple(text(BASE_INVENTORY), text(BASE_PLAYBOOK), fc.oneof(fc.string({maxLength: 20}), fc.constant('redis_count=3'))), {
      numRuns: 4,
      seed: Number(process.env.FUZZ_SEED ?? 4242),
    })
    // Plus hand-picked ones: each input file broken on its own.
    samples.push([BASE_INVENTORY.replace('hosts:\n        r1', 'hosts:\n       r1'), BASE_PLAYBOOK, 'x=1'])
    samples.push([BASE_INVENTORY, BASE_PLAYBOOK.replace('file:', 'fiel:'), 'x=1'])
    samples.push([BASE_INVENTORY, BASE_PLAYBOOK, 'not-key-value'])
    const results: Array<Promise<void>> = []
    let n = 0
    for (const [inv, pb, e] of samples) {
      const i = n++
      const invPath = join(dir, `inv${i}.yml`)
      const pbPath = join(dir, `pb${i}.yml`)
      writeFileSync(invPath, inv)
      writeFileSync(pbPath, pb)
      // What the CLI will meet first, computed in-process.
      const invErr = typed(() => loadInventory(invPath, inv), invPath).error
      const eErr = invErr ? undefined : typed(() => parseExtraVar(e, () => ({}))).error
      const pbErr = invErr || eErr ? undefined : typed(() => loadPlaybook(pbPath, modules, pb), pbPath).error
      // --limit names a host no inventory here has: even valid input never connects anywhere.
      const args = ['run', '-i', invPath, pbPath, '-e', e, '--limit', 'nohost-fuzz-zz9', '--check']
      results.push(
        runCli(args).then((r) => {
          const all = r.stdout + r.stderr
          const ctx = `sample ${i}: ${JSON.stringify(args)}\n${all.slice(-2000)}`
          assert.doesNotMatch(all, /^\s+at .+[(:]\d+:\d+\)?$/m, `stack trace printed\n${ctx}`)
          assert.doesNotMatch(all, /this is a bug/, ctx)
          assert.ok(r.code !== null && r.code >= 1, `exit code ${r.code}\n${ctx}`)
          assert.match(r.stderr, /^error: /m, ctx)
          const first = invErr ?? eErr ?? pbErr
          if (first?.where.file) assert.ok(r.stderr.includes(first.where.file), `error names ${first.where.file}\n${ctx}`)
          if (first?.where.line) assert.ok(r.stderr.includes(`${first.where.file}:${first.where.line}`), `error names line ${first.where.line}\n${ctx}`)
          if (!first) assert.match(r.stderr, /nohost-fuzz-zz9/, ctx)
        }),
      )
      // Three at a time: the machine is shared.
      if (results.length % 3 === 0) await Promise.all(results.slice(-3))
    }
    await Promise.all(results)
  })
})

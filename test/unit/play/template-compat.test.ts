import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {describe, it} from 'node:test'
import Handlebars from 'handlebars'
import {quote} from '../../../src/shell.js'
import {redisArg, renderString, renderText} from '../../../src/play/template.js'
import {loadYaml} from '../../../src/yamlfile.js'

// The engine that rendered templates before the Jinja subset, with the helpers it had: our own
// redis.conf template and playbook strings must come out of the new engine byte for byte the same.
const hb = Handlebars.create()
const num = (v: unknown) => Number(v)
const args = (a: unknown[]) => a.slice(0, -1)
const loose = (v: unknown) => Boolean(v) && !['false', 'no', 'off', '0'].includes(String(v).toLowerCase())
hb.registerHelper('add', (...a: unknown[]) => args(a).reduce<number>((s, v) => s + num(v), 0))
hb.registerHelper('not', (x: unknown) => !loose(x))
hb.registerHelper('yesno', (v: unknown) => (loose(v) ? 'yes' : 'no'))
hb.registerHelper('quote', (v: unknown) => quote(String(v)))
hb.registerHelper('expanduser', (p: unknown, o: {data?: {root?: Record<string, unknown>}}) => {
  const home = o?.data?.root?.ansible_user_dir
  const s = String(p)
  return typeof home !== 'string' ? s : s === '~' ? home : s.startsWith('~/') ? `${home}/${s.slice(2)}` : s
})
hb.registerHelper('redisarg', (v: unknown) => redisArg(v))
hb.registerHelper('redisargs', (v: unknown) =>
  (Array.isArray(v) ? v.map(String) : String(v ?? '').split(/\s+/))
    .filter((w) => w !== '')
    .map(redisArg)
    .join(' '),
)
const old = (src: string, vars: Record<string, unknown>) => hb.compile(src, {strict: true, noEscape: true})(vars)

const defaults = loadYaml('playbooks/defaults.yml').value as Record<string, unknown>
const base = {...defaults, inventory_hostname: 'h1', redis_bind: '192.0.2.1', item: 7000}

describe('templates/redis.conf.hbs renders exactly as it did under Handlebars', () => {
  const src = readFileSync('templates/redis.conf.hbs', 'utf8')
  const variants: Array<Record<string, unknown>> = [
    {},
    {redis_password: 'p"a ss\nword', redis_maxmemory: '1gb', redis_maxmemory_policy: 'allkeys-lru'},
    {redis_min_replicas_to_write: 1, redis_min_replicas_max_lag: 5, redis_appendonly: true, redis_save: '900 1'},
    {redis_extra_config: ['tcp-backlog 200', 'hz 20'], redis_bind: ['10.0.0.1', '127.0.0.1'], redis_cluster_require_full_coverage: 'no'},
    {redis_bind: '10.0.0.1 ::1', redis_appendonly: 'yes', redis_password: 'x', item: 6379, redis_extra_config: []},
  ]
  variants.forEach((v, i) =>
    it(`variant ${i}`, () => {
      const vars = {...base, ...v}
      assert.equal(renderText(src, vars, {file: 'templates/redis.conf.hbs'}), old(src, vars))
    }),
  )
})

describe('the strings in playbooks/*.yml render as they did under Handlebars', () => {
  const vars = {
    ...base,
    redis_port_start: 7000,
    redis_count: 3,
    redis_keep_data: false,
    ansible_user_dir: '/home/u',
    redis_cluster_dir: '~/redis_cluster',
    baremetal_group: 'redis',
    ansible_host_ip: '10.0.0.1',
    play_hosts_ips: ['10.0.0.1'],
    allow_data_loss: false,
    redis_members: {ips: []},
    baremetal_controller_ip: '10.0.0.9',
    redis_version: '7.0.15',
    redis_source: 'x.tar.gz',
    redis_source_sha256: '',
    allow_partial: false,
    remove_missing: false,
    redis_purge: false,
    redis_port_end: 7002,
    redis_bus_start: 17000,
    redis_bus_end: 17002,
  }
  const strings: string[] = []
  const walk = (v: unknown): void => {
    if (typeof v === 'string' && v.includes('{{')) strings.push(v)
    else if (Array.isArray(v)) v.forEach(walk)
    else if (v && typeof v === 'object') Object.values(v).forEach(walk)
  }
  for (const f of ['playbooks/redis-cluster.yml', 'playbooks/redis-down.yml', 'playbooks/defaults.yml']) walk(loadYaml(f).value)
  it(`${strings.length} strings`, () => {
    let compared = 0
    const skipped: string[] = []
    assert.ok(strings.length > 50)
    for (const s of strings) {
      let before: string
      try {
        before = old(s, vars)
      } catch {
        skipped.push(s)
        continue // needs a variable this sample lacks: nothing to compare
      }
      // One change on purpose: remove: "{{ not (redis_keep_data | bool) }}" (was {{ not redis_keep_data }}).
      compared++
      const after = renderString(s, vars)
      assert.equal(String(after), before, s)
    }
    assert.ok(compared >= strings.length - 1, `compared ${compared} of ${strings.length}; skipped ${skipped.join(' ; ')}`)
  })
})

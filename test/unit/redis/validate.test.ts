import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {EXIT, InputError} from '../../../src/errors.js'
import {loadInventory} from '../../../src/inventory/inventory.js'
import {reshapeRefusal} from '../../../src/redis/scale.js'
import {busHint, parseVersionH, validateLayout, type ValidateOptions} from '../../../src/redis/validate.js'

const defaults = {redis_port_start: 6379, redis_count: 100, redis_replicas: 0, redis_version: '7.0.15', redis_extra_config: [], redis_allowed_clients: [], redis_firewall: true}
const INV = `redis:
  hosts:
    a: {ansible_host: 192.0.2.1}
    b: {ansible_host: 192.0.2.2}
`
const hosts = (text = INV) => [...loadInventory('i.yml', text).hosts.values()]
const fromCli: ValidateOptions = {whereOf: () => ({label: '-e'})}

function refused(extra: Record<string, unknown>, re: RegExp, o: ValidateOptions = fromCli, text = INV): InputError {
  let got: unknown
  try {
    validateLayout(hosts(text), defaults, extra, 'i.yml', o)
  } catch (error) {
    got = error
  }
  assert.ok(got instanceof InputError, `expected an InputError for ${JSON.stringify(extra)}`)
  assert.equal(got.exitCode, EXIT.usage)
  assert.match(got.describe(), re)
  return got
}

describe('validateLayout: every redis_* variable before any host', () => {
  it('accepts the defaults and typical values', () => {
    const l = validateLayout(
      hosts(),
      defaults,
      {redis_count: '10', redis_allowed_clients: ['10.0.0.0/8', '192.0.2.7'], redis_extra_config: ['tcp-backlog 1024'], redis_maxmemory: '64mb', redis_save: '900 1 300 10'},
      'i.yml',
    )
    assert.deepEqual(
      l.map((x) => x.count),
      [10, 10],
    )
  })

  it('a non-number is named as such, not as "at least 1 instance"', () => {
    const e = refused({redis_count: 'ten'}, /redis_count \(-e\) is "ten": not a whole number/)
    assert.doesNotMatch(e.message, /at least 1/)
    refused({redis_replicas: 'one'}, /redis_replicas \(-e\) is "one"/)
    refused({redis_cluster_node_timeout: '5s'}, /redis_cluster_node_timeout/)
    refused({redis_appendonly: 'maybe'}, /redis_appendonly .* not a boolean/)
    refused({redis_maxmemory_policy: 'lru'}, /not a maxmemory policy/)
    refused({redis_version: 'latest'}, /not a Redis version/)
  })

  it('bus ports past 65535: the hint gives real limits', () => {
    refused({redis_port_start: 60000, redis_count: 10}, /bus ports 70000-70009 go past 65535[\s\S]*redis_port_start ≤ 55526/)
    assert.match(busHint(60000, 10), /redis_port_start ≤ 55526 \(with redis_count 10\)/)
    assert.doesNotMatch(busHint(60000, 10), /-\d/)
    assert.match(busHint(55000, 600), /redis_port_start ≤ 54936 .* or redis_count ≤ 536/)
  })

  it('bad CIDRs and list variables given as strings', () => {
    refused({redis_allowed_clients: ['10.0.0.0/33']}, /redis_allowed_clients \(-e\) entry "10.0.0.0\/33"/)
    refused({redis_allowed_clients: ['db.example.com']}, /not an IPv4 address or CIDR/)
    const e = refused({redis_extra_config: '["tcp-backlog 1024"]'}, /redis_extra_config \(-e\) is the string .*not a list: a -e key=value value is always a string/)
    assert.match(e.hint ?? '', /-e '\{"redis_extra_config": \["tcp-backlog 1024"\]\}'/)
    // One CIDR as a string is what the firewall takes (split on spaces/commas): checked entry by entry.
    assert.equal(validateLayout(hosts(), defaults, {redis_allowed_clients: '10.0.0.0/8, 192.0.2.7'}, 'i.yml').length, 2)
    refused({redis_allowed_clients: '10.0.0.0/8 10.0.0.300'}, /entry "10.0.0.300"/)
    refused({redis_extra_config: 'tcp-backlog 1024'}, /redis_extra_config \(-e\) is the string "tcp-backlog 1024", not a list/)
    refused({redis_extra_config: ['tcp-backlog 1024\nrequirepass x']}, /not one "directive value" line/)
  })

  it('names the inventory position of a value set there', () => {
    const text = 'redis:\n  hosts:\n    a: {ansible_host: 192.0.2.1}\n  vars:\n    redis_count: ten\n'
    const o: ValidateOptions = {whereOf: (_h, name) => (name === 'redis_count' ? {where: {file: 'i.yml', line: 5, col: 5}, label: 'inventory'} : undefined)}
    refused({}, /^i\.yml:5:5, host a: redis_count \(inventory\) is "ten"/, o, text)
  })

  it('two hosts with one address: refused when they would share ports or the cluster directory, not when both are apart', () => {
    refused({}, /hosts a and b have the same address 192.0.2.1 and would share ports/, fromCli, 'redis:\n  hosts:\n    a: {ansible_host: 192.0.2.1}\n    b: {ansible_host: 192.0.2.1}\n')
    // b's bus ports (17000…) would take a's data range 17000-17002.
    refused(
      {},
      /would share ports/,
      fromCli,
      'redis:\n  hosts:\n    a: {ansible_host: 192.0.2.1, redis_port_start: 17000, redis_count: 3, redis_cluster_dir: /a}\n    b: {ansible_host: 192.0.2.1, redis_port_start: 7000, redis_count: 3, redis_cluster_dir: /b}\n',
    )
    refused(
      {},
      /would share the cluster directory \/same/,
      fromCli,
      'redis:\n  hosts:\n    a: {ansible_host: 192.0.2.1, redis_port_start: 7000, redis_count: 3, redis_cluster_dir: /same}\n    b: {ansible_host: 192.0.2.1, redis_port_start: 7100, redis_count: 3, redis_cluster_dir: /same}\n',
    )
    const apart = hosts(
      'redis:\n  hosts:\n    a: {ansible_host: 127.0.0.1, redis_port_start: 7000, redis_count: 3, redis_cluster_dir: /a}\n    b: {ansible_host: 127.0.0.1, redis_port_start: 7100, redis_count: 3, redis_cluster_dir: /b}\n',
    )
    assert.equal(validateLayout(apart, defaults, {}, 'i.yml').length, 2)
  })

  it('redis_version against the controller tarball, both directions', () => {
    const tar = (v: string): ValidateOptions => ({tarballVersion: () => ({path: '/t/redis.tar.gz', version: v})})
    refused(
      {redis_version: '5.0.3', redis_source: '/t/redis.tar.gz'},
      /redis_version is 5.0.3, but the tarball \/t\/redis.tar.gz holds Redis 7.0.15[\s\S]*set redis_version to "7.0.15"/,
      tar('7.0.15'),
    )
    refused({redis_version: '7.0.15', redis_source: '/t/redis.tar.gz'}, /holds Redis 5.0.3/, tar('5.0.3'))
    assert.equal(validateLayout(hosts(), defaults, {redis_version: '5.0.3', redis_source: '/t/redis.tar.gz'}, 'i.yml', tar('5.0.3')).length, 2)
    assert.equal(parseVersionH('#ifndef X\n#define REDIS_VERSION "7.0.15"\n'), '7.0.15')
  })
})

describe('reshapeRefusal: redis_replicas changed on a live cluster', () => {
  const shape = (replicasEach: number, n: number, spare = 0) => ({masters: Array.from({length: n}, (_, i) => ({addr: `10.0.0.${i + 1}:7000`, replicas: replicasEach})), spare, orphans: 0})
  it('1 → 0 and 0 → 1 and 5 → 1 are refused, naming both shapes', () => {
    const r = reshapeRefusal(shape(1, 3), 0, 0)
    assert.match(r?.message ?? '', /redis_replicas is 0, but the live cluster has 3 master\(s\) with 1 replica\(s\) each/)
    assert.match(r?.hint ?? '', /set redis_replicas back to 1/)
    assert.match(reshapeRefusal(shape(0, 6), 1, 0)?.message ?? '', /6 master\(s\) with 0 replica/)
    assert.match(reshapeRefusal(shape(5, 2), 1, 0)?.message ?? '', /means 6 master\(s\)/)
  })
  it('the same shape, or a scale-out the pass can reach, is not refused', () => {
    assert.equal(reshapeRefusal(shape(1, 3), 1, 0), undefined)
    assert.equal(reshapeRefusal(shape(1, 3, 6), 1, 3), undefined)
    assert.equal(reshapeRefusal(shape(0, 6, 2), 0, 2), undefined)
  })
})

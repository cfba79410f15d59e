import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {InputError} from '../../../src/errors.js'
import type {Host} from '../../../src/inventory/inventory.js'
import {topologyOf, validateSentinel} from '../../../src/redis/sentinel-validate.js'

const host = (i: number): Host => ({name: `h${i}`, connection: {address: `10.0.0.${i}`}, vars: {}, groups: ['redis']}) as unknown as Host
const base = {redis_port_start: 7400, redis_sentinel_groups: 2, redis_replicas: 1, redis_cluster_name: 'redis-7400', redis_sentinel_port: 26379}
const data = (n: number, vars: Record<string, unknown> = {}) => Array.from({length: n}, (_, i) => ({host: host(i + 1), vars: {...base, ...vars}}))
const refuse = (fn: () => unknown, msg: RegExp) =>
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof InputError)
    assert.equal(e.exitCode, 5)
    assert.match(e.message, msg)
    return true
  })

describe('validateSentinel: refusals before any host changes', () => {
  it('a valid layout passes', () => {
    assert.equal(validateSentinel({data: data(3), file: 'inv.yml'}).groups.length, 2)
  })
  it('fewer than 3 Sentinels, a quorum above their count, replicas that cannot be placed apart', () => {
    refuse(() => validateSentinel({data: data(2), file: 'inv.yml'}), /2 Sentinel host\(s\)/)
    refuse(() => validateSentinel({data: data(3, {redis_sentinel_quorum: 4}), file: 'inv.yml'}), /redis_sentinel_quorum is 4/)
    refuse(() => validateSentinel({data: data(3, {redis_replicas: 3}), file: 'inv.yml'}), /redis_replicas is 3/)
  })
  it('bad numbers name the variable and where it was set', () => {
    const whereOf = () => ({where: {file: 'inv.yml', line: 7, col: 5}, label: 'inventory'})
    try {
      validateSentinel({data: data(3, {redis_sentinel_down_after_ms: 'soon'}), file: 'inv.yml', whereOf})
      assert.fail('not refused')
    } catch (error) {
      assert.ok(error instanceof InputError)
      assert.match(error.message, /redis_sentinel_down_after_ms \(inventory\) is "soon"/)
      assert.equal(error.where?.line, 7)
    }
    refuse(() => validateSentinel({data: data(3, {redis_sentinel_port: 7401}), file: 'inv.yml'}), /redis_sentinel_port is 7401, one of the data ports/)
    refuse(() => validateSentinel({data: data(3, {redis_sentinel_quorum: 'two'}), file: 'inv.yml'}), /redis_sentinel_quorum/)
  })
  it("HAProxy's ports: a data or Sentinel port on the same host, a read port on a write port, past 65535: refused; elsewhere fine", () => {
    const h1 = [host(1)]
    refuse(() => validateSentinel({data: data(3), haproxy: h1, file: 'inv.yml'}), /redis_haproxy_port_start: HAProxy's write port 7400 \(group 0\) on h1 is also its data instance port 7400/)
    refuse(() => validateSentinel({data: data(3, {redis_haproxy_port_start: 26378}), haproxy: h1, file: 'inv.yml'}), /write port 26379 \(group 1\) on h1 is also its Sentinel port 26379/)
    refuse(
      () => validateSentinel({data: data(3, {redis_haproxy_port_start: 8000, redis_haproxy_read_port_start: 8001}), haproxy: [host(4)], file: 'inv.yml'}),
      /redis_haproxy_port_start: HAProxy's write port 8001 \(group 1\) on h4 is also its read port of group 0/,
    )
    refuse(
      () => validateSentinel({data: data(3, {redis_haproxy_port_start: 65535}), haproxy: [host(4)], file: 'inv.yml'}),
      /redis_haproxy_port_start: the frontend ports of 2 group\(s\) go past 65535/,
    )
    refuse(() => validateSentinel({data: data(3, {redis_haproxy_read_port_start: 'x'}), haproxy: [host(4)], file: 'inv.yml'}), /redis_haproxy_read_port_start .*is "x"/)
    // The default "{{ redis_port_start }}": the data ports' start, fine on a host of its own.
    const l = validateSentinel({data: data(3, {redis_haproxy_port_start: '{{ redis_port_start }}', redis_haproxy_read_port_start: 7500}), haproxy: [host(4)], file: 'inv.yml'})
    assert.deepEqual(
      l.groups.map((g) => [g.writePort, g.readPort]),
      [
        [7400, 7500],
        [7401, 7501],
      ],
    )
    assert.equal(validateSentinel({data: data(3, {redis_haproxy_port_start: 8000}), haproxy: h1, file: 'inv.yml'}).groups[0].writePort, 8000)
  })
  it('redis_topology: cluster, sentinel, or refused', () => {
    const fail = (what: string): never => {
      throw new InputError(what)
    }
    assert.equal(topologyOf({}, fail), 'cluster')
    assert.equal(topologyOf({redis_topology: 'sentinel'}, fail), 'sentinel')
    assert.throws(() => topologyOf({redis_topology: 'ha'}, fail), /not a topology/)
  })
})

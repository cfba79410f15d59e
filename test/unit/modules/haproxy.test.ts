import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {namedReplyHex, parseFrontends, planHaproxy, renderHaproxyConfig, respHex, type HaproxyFacts, type HaproxySettings, type HaproxyWant} from '../../../src/modules/haproxy.js'

const settings = (o: Partial<HaproxySettings> = {}): HaproxySettings => ({
  name: 'c',
  dir: '/root/.baremetal/haproxy/c',
  bind: '0.0.0.0',
  inter: 250,
  sentinelInter: 500,
  fall: 2,
  rise: 1,
  timeoutClient: '24h',
  maxconn: 10000,
  hardStopAfter: '30s',
  frontends: [
    {
      name: 'c-6379',
      port: 6379,
      servers: [
        {ip: '10.0.0.1', port: 6379},
        {ip: '10.0.0.2', port: 6379},
      ],
      sentinels: [
        {ip: '10.0.0.1', port: 26379},
        {ip: '10.0.0.2', port: 26379},
        {ip: '10.0.0.3', port: 26379},
      ],
    },
  ],
  ...o,
})

const facts = (o: Partial<HaproxyFacts> = {}): HaproxyFacts => ({bin: '/usr/sbin/haproxy', version: '2.6.12', dir: true, cfg: 'x', applied: 'x', pid: '42', draining: [], down: [], ...o})
const want = (o: Partial<HaproxyWant> = {}): HaproxyWant => ({state: 'present', name: 'c', dir: '/d/c', pkg: 'haproxy', config: '', sha: 'x', ports: [6379], gateMs: 1250, keep: [], ...o})

describe('haproxy config', () => {
  it('writes go to a server only while a majority of the Sentinels name it, matched byte for byte', () => {
    const cfg = renderHaproxyConfig(settings())
    assert.match(cfg, /use-server s0 if \{ srv_is_up\(c-6379_write\/s0\) \} \{ nbsrv\(c-6379_named_s0\) ge 2 \}/)
    assert.match(cfg, /tcp-request connection reject unless .* or .*/)
    assert.match(cfg, /on-marked-down shutdown-sessions/)
    assert.ok(cfg.includes(`expect min-recv ${namedReplyHex({ip: '10.0.0.2', port: 6379}).length / 2} binary ${namedReplyHex({ip: '10.0.0.2', port: 6379})}`))
    assert.ok(!/QUIT\\r\\n\n\s*tcp-check expect/.test(cfg), 'no expect after QUIT')
    assert.doesNotMatch(cfg, /expect string \+OK/, 'no AUTH without a password')
  })
  it('without Sentinels: only while it is the one master', () => {
    const cfg = renderHaproxyConfig(settings({frontends: [{...settings().frontends[0], sentinels: []}]}))
    assert.match(cfg, /\{ nbsrv\(c-6379_write\) eq 1 \}/)
    assert.doesNotMatch(cfg, /_named_/)
  })
  it('the password only as hex AUTH bytes', () => {
    const cfg = renderHaproxyConfig(settings({password: 'p w#"x'}))
    assert.ok(!cfg.includes('p w#'))
    assert.ok(cfg.includes(`send-binary ${respHex(['AUTH', 'p w#"x'])}`))
  })
  it('frontends are checked', () => {
    assert.match(String(parseFrontends([{name: 'a', port: 1, servers: []}])), /servers is empty/)
    assert.match(
      String(
        parseFrontends([
          {name: 'a', port: 1, servers: ['h:1']},
          {name: 'b', port: 1, servers: ['h:2']},
        ]),
      ),
      /already the port of a/,
    )
    assert.match(String(parseFrontends([{name: 'a', port: 1, servers: ['db1:1'], sentinels: ['10.0.0.1:26379']}])), /not a numeric IP/)
    assert.deepEqual(parseFrontends([{name: 'a', port: '7000', servers: ['10.0.0.1:6379']}]), [{name: 'a', port: 7000, servers: [{ip: '10.0.0.1', port: 6379}], sentinels: []}])
  })
})

describe('haproxy plan', () => {
  it('nothing to do when running with the same config', () => assert.equal(planHaproxy(want(), facts()).kind, 'noop'))
  it('a changed config reloads', () => {
    const p = planHaproxy(want({sha: 'y'}), facts())
    assert.equal(p.kind, 'change')
    assert.ok(p.kind === 'change' && p.write && p.action === 'reload')
  })
  it('dead: started', () => {
    const p = planHaproxy(want(), facts({pid: ''}))
    assert.ok(p.kind === 'change' && !p.write && p.action === 'start', JSON.stringify(p))
  })
  it('no binary: install first', () => {
    const p = planHaproxy(want(), facts({bin: '', version: ''}))
    assert.ok(p.kind === 'change' && p.install)
    assert.match(p.kind === 'change' ? p.would : '', /would install haproxy/)
  })
  it('absent: stop and remove, then nothing', () => {
    const p = planHaproxy(want({state: 'absent'}), facts({draining: ['41']}))
    assert.ok(p.kind === 'change' && p.action === 'stop')
    assert.match(p.msg, /42, 41/)
    assert.equal(planHaproxy(want({state: 'absent'}), facts({pid: '', dir: false})).kind, 'noop')
  })
})

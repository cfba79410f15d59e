import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {haproxyGroupView, hostView, parseShowStat, renderHaproxyLines, type HaproxyReading} from '../../../src/redis/haproxy-view.js'
import {sentinelStatusReport, renderSentinelStatus} from '../../../src/redis/sentinel-status.js'
import {planSentinelLayout} from '../../../src/redis/sentinel-layout.js'
import type {SentinelView} from '../../../src/redis/sentinel-view.js'

const G = 'redis-7000-7000'
const M = '10.0.0.1:7000'
const R = '10.0.0.2:7000'
const T = ['10.0.0.1:26379', '10.0.0.2:26379', '10.0.0.3:26379']
const HEAD = '# pxname,svname,qcur,status,check_status,last_chk,addr,'

type Row = [backend: string, server: string, status: string, check?: string, lastChk?: string, addr?: string]
const csv = (rows: Row[]) => [HEAD, ...rows.map(([b, s, st, c = '', l = '', a = '']) => `${b},${s},0,${st},${c},${l},${a},`), ''].join('\n')

/** One host's `show stat` for group G: write servers s0 (M), s1 (R); named_sX up counts; optional read backend. */
function stat(o: {up?: [boolean, boolean]; named?: [number, number]; read?: boolean[]} = {}): string {
  const up = o.up ?? [true, false]
  const named = o.named ?? [3, 0]
  const rows: Row[] = [[G, 'FRONTEND', 'OPEN']]
  ;[M, R].forEach((a, i) =>
    rows.push([G + '_write', `s${i}`, up[i] ? 'UP' : 'DOWN', up[i] ? 'L7OK' : 'L7RSP', up[i] ? 'Layer7 check passed' : "TCPCHK did not match content 'role:master' at step 5", a]),
  )
  rows.push([G + '_write', 'BACKEND', 'UP'])
  ;[0, 1].forEach((i) => T.forEach((t, k) => rows.push([`${G}_named_s${i}`, `t${k}`, k < named[i] ? 'UP' : 'DOWN', '', '', t])))
  if (o.read) o.read.forEach((u, i) => rows.push([G + '_read', `s${i}`, u ? 'UP' : 'DOWN', '', '', [M, R][i]]))
  return csv(rows)
}
const at = (host: string, text: string): HaproxyReading => ({host, text, via: 'stream-local'})

describe('parseShowStat', () => {
  it('reads the server rows of a real HAProxy 2.6 CSV (header by name, totals left out)', () => {
    const real = [
      '# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,',
      'g_write,FRONTEND,,,0,0,9984,0,0,0,0,0,0,,,,,OPEN,,,,,,,,,1,2,0,,,,0,0,0,0,,,,,,,,,,,0,0,0,,,0,0,0,0,,,,,,,,,,,,,,,,,,,,,tcp,,',
      'g_write,s0,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN,1,1,0,1,1,2,2,,1,3,1,,0,,2,0,,0,L4CON,,0,,,,,,,,,,,0,0,,,,,-1,Connection refused at step 1 of tcp-check (connect),,0,0,0,0,,,,Layer4 connection problem,,1,2,0,,,,127.0.0.1:47599,,tcp,,',
      'g_write,BACKEND,0,0,0,0,999,0,0,0,0,0,,0,0,0,0,DOWN,0,0,0,,1,2,2,,1,3,0,,0,,1,0,,0,,,,,,,,,,,,,,0,0,0,0,0,0,-1,,,0,0,0,0,,,,,,,,,,,,,,tcp,roundrobin,',
      '',
    ].join('\n')
    assert.deepEqual(parseShowStat(real), [{backend: 'g_write', server: 's0', status: 'DOWN', addr: '127.0.0.1:47599', check: 'L4CON: Connection refused at step 1 of tcp-check (connect)'}])
  })

  it('says so when the answer is not the CSV (an error of the CLI)', () => {
    assert.match(String(parseShowStat('Unknown command.\n')), /other than its stats CSV: "Unknown command\."/)
    assert.match(String(parseShowStat('')), /\(nothing\)/)
  })
})

describe('hostView: where one HAProxy sends writes, by the config rule', () => {
  it('the server whose role:master check passes and that a majority of Sentinels name', () => {
    const v = hostView({name: G}, at('h4', stat()))
    assert.equal(v.writeTo, M)
    assert.deepEqual(
      v.servers.map((s) => [s.id, s.addr, s.up, s.named, s.sentinels]),
      [
        ['s0', M, true, 3, 3],
        ['s1', R, false, 0, 3],
      ],
    )
  })

  it('up as master but named by a minority only (an old master restarted empty): no writes to it', () => {
    assert.equal(hostView({name: G}, at('h4', stat({up: [true, false], named: [1, 2]}))).writeTo, null)
    // the majority's server not passing its check either: none
    assert.equal(hostView({name: G}, at('h4', stat({up: [false, false], named: [3, 0]}))).writeTo, null)
    // 2 of 3 is a majority
    assert.equal(hostView({name: G}, at('h4', stat({up: [false, true], named: [0, 2]}))).writeTo, R)
  })

  it('without Sentinel backends: the one server passing; two passing: none', () => {
    const rows: Row[] = [
      [G + '_write', 's0', 'UP', '', '', M],
      [G + '_write', 's1', 'DOWN', '', '', R],
    ]
    assert.equal(hostView({name: G}, at('h4', csv(rows))).writeTo, M)
    rows[1][2] = 'UP 1/2'
    assert.equal(hostView({name: G}, at('h4', csv(rows))).writeTo, null)
    rows[1][2] = 'DOWN 1/2'
    assert.equal(hostView({name: G}, at('h4', csv(rows))).writeTo, M, 'DOWN 1/2 (coming up) is not up yet')
  })

  it('the read backend: its up servers, only when the group has a read frontend', () => {
    assert.deepEqual(hostView({name: G, readPort: 7100}, at('h4', stat({read: [false, true]}))).readUp, [R])
    assert.equal(hostView({name: G}, at('h4', stat({read: [false, true]}))).readUp, undefined)
  })

  it('an unreadable host, and a configuration without this group', () => {
    assert.deepEqual(hostView({name: G}, {host: 'h4', error: 'Connection refused'}), {host: 'h4', error: 'Connection refused', writeTo: null, servers: []})
    assert.match(hostView({name: 'other-7001'}, at('h4', stat())).error!, /no backend other-7001_write/)
  })

  it('addresses from the layout when the CSV has no addr column (HAProxy before 1.9)', () => {
    const text = ['# pxname,svname,status,', `${G}_write,s0,DOWN,`, `${G}_write,s1,UP,`, ''].join('\n')
    assert.equal(hostView({name: G}, at('h4', text), [M, R]).writeTo, R)
  })
})

describe('haproxyGroupView: judged against the Sentinels and the other HAProxy hosts', () => {
  it('every host writing to the Sentinels’ master: ok', () => {
    const v = haproxyGroupView({name: G}, M, [at('h4', stat()), at('h5', stat())])
    assert.deepEqual([v.writeTo, v.agree, v.split, v.degraded], [M, true, [], []])
    assert.deepEqual(renderHaproxyLines(v, M), [`  haproxy h4: writes → ${M} (the master)`, `  haproxy h5: writes → ${M} (the master)`])
  })

  it('writing to a server the Sentinels do not name: split', () => {
    const v = haproxyGroupView({name: G}, R, [at('h4', stat())])
    assert.deepEqual(v.split, [`HAProxy on h4 sends writes to ${M}, but the Sentinels name ${R}`])
    assert.deepEqual(renderHaproxyLines(v, R), [`  haproxy h4: writes → ${M} (NOT the master ${R})`])
  })

  it('two HAProxy hosts disagreeing: split, writeTo null', () => {
    const v = haproxyGroupView({name: G}, undefined, [at('h4', stat()), at('h5', stat({up: [false, true], named: [0, 3]}))])
    assert.equal(v.writeTo, null)
    assert.equal(v.agree, false)
    assert.deepEqual(v.split, [`HAProxy hosts disagree on where writes go: ${M} (h4) vs ${R} (h5)`])
  })

  it('no server up: degraded, each server with its check result', () => {
    const v = haproxyGroupView({name: G}, M, [at('h4', stat({up: [false, false]}))])
    assert.deepEqual(v.split, [])
    assert.equal(v.degraded.length, 1)
    assert.match(
      v.degraded[0],
      /^HAProxy on h4 has no server for writes \(it refuses them\): 10\.0\.0\.1:7000 DOWN \(L7RSP: TCPCHK did not match content 'role:master' at step 5\), named by 3\/3 Sentinels; /,
    )
    assert.deepEqual(renderHaproxyLines(v, M), ['  haproxy h4: writes → no server (writes refused)'])
  })

  it('one host not answering, the other fine: degraded, writes still named (the answering hosts agree); no read replica: degraded', () => {
    const v = haproxyGroupView({name: G, readPort: 7100}, M, [at('h4', stat({read: [false, true]})), {host: 'h5', error: 'no admin socket at /root/x/admin.sock'}])
    assert.deepEqual([v.writeTo, v.agree], [M, true])
    assert.deepEqual(v.degraded, ['HAProxy on h5 does not answer: no admin socket at /root/x/admin.sock'])
    const none = haproxyGroupView({name: G, readPort: 7100}, M, [at('h4', stat({read: [false, false]}))])
    assert.deepEqual(none.degraded, ['HAProxy on h4 has no replica up for reads'])
    assert.deepEqual(renderHaproxyLines(none, M), [`  haproxy h4: writes → ${M} (the master); reads → no replica up`])
  })
})

describe('sentinelStatusReport with HAProxy', () => {
  const hosts = ['h1', 'h2', 'h3'].map((host, i) => ({host, ip: `10.0.0.${i + 1}`}))
  const layout = planSentinelLayout({clusterName: 'redis-7000', data: hosts, sentinels: hosts, haproxy: [{host: 'h4', ip: '10.0.0.4'}], portStart: 7000, groups: 1, replicas: 1, sentinelPort: 26379})
  const view: SentinelView = {
    groups: [
      {
        name: G,
        port: 7000,
        answers: T.map((sentinel) => ({sentinel, master: M})),
        master: M,
        roles: [
          {addr: M, role: 'master', offset: 1},
          {addr: R, role: 'replica', masterAddr: M, link: 'connected', offset: 1},
        ],
        replicas: [{addr: R, state: 'online', link: 'connected', lagBytes: 0, lagSeconds: 0, inSync: true}],
      },
    ],
    sentinels: T.map((addr) => ({addr, reachable: true})),
    quorum: 2,
    readAt: '',
  }

  it('carries each group’s HAProxy view in the JSON and the text; no HAProxy reading: no field', () => {
    const r = sentinelStatusReport(layout, view, [at('h4', stat())])
    assert.equal(r.health, 'ok')
    assert.equal(r.groups[0].haproxy?.writeTo, M)
    assert.match(renderSentinelStatus(r, view), /haproxy h4: writes → 10\.0\.0\.1:7000 \(the master\)/)
    assert.equal('haproxy' in sentinelStatusReport(layout, view).groups[0], false)
  })

  it('HAProxy writing elsewhere makes the group (and the report) split, its reason listed', () => {
    const r = sentinelStatusReport(layout, view, [at('h4', stat({up: [false, true], named: [0, 3]}))])
    assert.equal(r.groups[0].health, 'split')
    assert.equal(r.ok, false)
    assert.deepEqual(r.problems, [`${G}: HAProxy on h4 sends writes to ${R}, but the Sentinels name ${M}`])
  })

  it('HAProxy not answering: degraded', () => {
    const r = sentinelStatusReport(layout, view, [{host: 'h4', error: 'Connection refused'}])
    assert.equal(r.health, 'degraded')
    assert.deepEqual(r.problems, [`${G}: HAProxy on h4 does not answer: Connection refused`])
  })
})

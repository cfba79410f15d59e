import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {readHaproxyOn} from '../../../src/redis/haproxy-read.js'
import {type ExecOptions, type ExecResult, StreamLocalRefused, type Transport} from '../../../src/transport/types.js'

const CSV = '# pxname,svname,status,\nc-7000_write,s0,UP,\n'

/** A host whose commands answer by pattern, with or without a stream-local channel. */
function fakeHost(o: {sock?: boolean; stream?: 'ok' | 'refused' | 'hang' | 'none'; perl?: {code: number; stdout?: string; stderr?: string}}): Transport & {ran: string[]; opened: string[]} {
  const ran: string[] = []
  const opened: string[] = []
  const res = (command: string, exitCode: number, stdout = '', stderr = ''): ExecResult => ({command, exitCode, signal: null, stdout, stderr, failed: exitCode !== 0, timedOut: false})
  const t: Transport & {ran: string[]; opened: string[]} = {
    host: 'h4',
    address: '10.0.0.4',
    stats: {connections: 0, execs: 0, uploads: 0},
    ran,
    opened,
    async connect() {},
    async exec(command: string, _o?: ExecOptions) {
      ran.push(command)
      if (command.includes("printf 'home=%s")) return res(command, 0, `home=/home/ops\n${o.sock === false ? '' : 'sock=yes\n'}`)
      if (command.includes('IO::Socket::UNIX')) return res(command, o.perl?.code ?? 0, o.perl?.stdout ?? CSV, o.perl?.stderr ?? '')
      return res(command, 127, '', 'unexpected')
    },
    async upload() {},
    async putFile() {},
    async close() {},
  }
  if (o.stream !== 'none') {
    t.unixSocket = async (path: string, request: string) => {
      opened.push(`${path} ${JSON.stringify(request)}`)
      if (o.stream === 'refused') throw new StreamLocalRefused('(SSH) Channel open failure: administratively prohibited')
      if (o.stream === 'hang') throw new Error(`no answer from ${path} within 5000 ms`)
      return CSV
    }
  }
  return t
}

describe('readHaproxyOn: the admin socket over SSH', () => {
  it('the stream-local channel to ~/.baremetal/haproxy/<name>/admin.sock (the home asked first): show stat, no other command', async () => {
    const t = fakeHost({stream: 'ok'})
    assert.deepEqual(await readHaproxyOn(t, 'c-7000'), {text: CSV, via: 'stream-local'})
    assert.deepEqual(t.opened, ['/home/ops/.baremetal/haproxy/c-7000/admin.sock "show stat\\n"'])
    assert.equal(t.ran.length, 1)
  })

  it('sshd refusing the channel: perl on the host reads the same socket', async () => {
    const t = fakeHost({stream: 'refused'})
    assert.deepEqual(await readHaproxyOn(t, 'c-7000'), {text: CSV, via: 'command'})
    assert.equal(t.ran.length, 2)
    assert.match(t.ran[1], /IO::Socket::UNIX.* \/home\/ops\/\.baremetal\/haproxy\/c-7000\/admin\.sock 'show stat\n'$/)
    // a transport without the channel (local connection) asks perl at once
    assert.deepEqual(await readHaproxyOn(fakeHost({stream: 'none'}), 'c-7000'), {text: CSV, via: 'command'})
  })

  it('a stale socket (HAProxy killed): the connect error, said plainly', async () => {
    const r = await readHaproxyOn(fakeHost({stream: 'refused', perl: {code: 111, stdout: '', stderr: 'Connection refused\n'}}), 'c-7000')
    assert.deepEqual(r, {error: '/home/ops/.baremetal/haproxy/c-7000/admin.sock: Connection refused (HAProxy is not running)', via: 'command'})
  })

  it('no socket: not running here, nothing opened; an answer that never ends: its timeout', async () => {
    const none = fakeHost({sock: false, stream: 'ok'})
    assert.match((await readHaproxyOn(none, 'c-7000')).error!, /^no admin socket at \/home\/ops\/\.baremetal\/haproxy\/c-7000\/admin\.sock: our HAProxy of c-7000 is not running here$/)
    assert.deepEqual(none.opened, [])
    assert.match((await readHaproxyOn(fakeHost({stream: 'hang'}), 'c-7000')).error!, /no answer from .* within 5000 ms/)
  })
})

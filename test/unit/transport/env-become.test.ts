import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {quote} from '../../../src/shell.js'
import {BecomeTransport} from '../../../src/transport/become.js'
import {EnvTransport} from '../../../src/transport/env.js'
import {LocalTransport} from '../../../src/transport/local.js'
import type {ExecResult, Transport} from '../../../src/transport/types.js'

// What reaches the host's shell for environment: and become_user: (sudo -u, or su -s /bin/sh).
function recorder(): Transport & {sent: string[]} {
  const sent: string[] = []
  return {
    host: 'h',
    address: 'h',
    stats: {connections: 0, execs: 0, uploads: 0},
    sent,
    async connect() {},
    async exec(command: string): Promise<ExecResult> {
      sent.push(command)
      return {command, exitCode: 0, signal: null, stdout: '', stderr: '', failed: false, timedOut: false}
    },
    async upload() {},
    async putFile() {},
    async close() {},
  }
}

describe('environment and become_user transports', () => {
  it('environment exports shell-quoted values before the command, inside the become shell; the result names the command as written', async () => {
    const inner = recorder()
    const t = new EnvTransport(new BecomeTransport(inner, 'postgres'), {A: "it's", B: '$(reboot)'})
    const r = await t.exec('env')
    assert.equal(r.command, 'env')
    assert.equal(inner.sent[0], `sudo -n -H -u postgres -- sh -c ${quote(`export A=${quote("it's")} B=${quote('$(reboot)')}; env`)}`)
  })
  it('become_method su runs /bin/sh as the user (system users have nologin)', async () => {
    const inner = recorder()
    await new BecomeTransport(inner, 'nobody', 'su').exec('id -un')
    assert.equal(inner.sent[0], "su -s /bin/sh nobody -c 'id -un'")
  })
  it('the exported values reach the command, unexpanded', async () => {
    const r = await new EnvTransport(new LocalTransport('l'), {A: "it's $HOME"}).exec('printf %s "$A"')
    assert.equal(r.stdout, "it's $HOME")
  })
})

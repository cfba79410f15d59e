// A connection dropped during an upload ends the upload script's stdin at an arbitrary
// byte. Whatever that byte, sh must leave each destination either as it was or
// complete: never half-written, never moved to a truncated path. Real `sh`, real files.
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'
import {buildUploadScript, UPLOAD_DONE} from '../../../src/transport/upload-script.js'

const root = mkdtempSync(join(tmpdir(), 'bm-upload-drop-'))
after(() => rmSync(root, {recursive: true, force: true}))

const OLD_A = 'old contents of a\n'
const NEW_A = Buffer.from('new a '.repeat(40) + '\n')
const NEW_B = Buffer.from('b'.repeat(300))

function setup(dir: string) {
  rmSync(dir, {recursive: true, force: true})
  // Plain names (left unquoted by quote()): a cut inside one is a valid shorter word.
  mkdirSync(join(dir, 'sub'), {recursive: true})
  writeFileSync(join(dir, 'sub/a.conf'), OLD_A)
  return buildUploadScript([
    {path: join(dir, 'sub/a.conf'), content: NEW_A, mode: 0o640},
    {path: join(dir, 'sub/b.conf'), content: NEW_B, mode: 0o600},
  ])
}

describe('upload script: a drop at any byte leaves no partial file in place', () => {
  it('every cut of the script: each destination old or complete; nothing but temp files besides', () => {
    const dir = join(root, 'cut')
    const script = setup(dir)
    // Every byte of the lines that name a path (a cut there is the dangerous one), and
    // a sample of the others and of the payloads.
    const cuts = new Set<number>()
    let pos = 0
    for (const line of script.split('\n')) {
      const step = /^(mv|chmod|rm) /.test(line) ? 5 : /^[A-Za-z0-9+/=]{20,}$/.test(line) ? 41 : 9
      for (let i = 0; i <= line.length; i += step) cuts.add(pos + i)
      cuts.add(pos + line.length)
      pos += line.length + 1
    }
    cuts.add(script.length)
    let complete = 0
    for (const cut of [...cuts].sort((x, y) => x - y)) {
      setup(dir)
      const r = spawnSync('sh', ['-s'], {input: script.slice(0, cut), cwd: dir, encoding: 'utf8'})
      const a = readFileSync(join(dir, 'sub/a.conf'))
      const ctx = `cut at ${cut}: ${JSON.stringify(script.slice(Math.max(0, cut - 40), cut))}`
      assert.ok(a.equals(Buffer.from(OLD_A)) || a.equals(NEW_A), `a.conf half-written, ${ctx}`)
      if (existsSync(join(dir, 'sub/b.conf'))) assert.ok(readFileSync(join(dir, 'sub/b.conf')).equals(NEW_B), `b.conf half-written, ${ctx}`)
      const extra = [...readdirSync(dir), ...readdirSync(join(dir, 'sub')).map((f) => `sub/${f}`)].filter(
        (f) => !['sub', 'sub/a.conf', 'sub/b.conf', 'sub/a.conf.baremetal-tmp', 'sub/b.conf.baremetal-tmp'].includes(f),
      )
      assert.deepEqual(extra, [], `stray files, ${ctx}`)
      if (r.stdout.includes(UPLOAD_DONE)) {
        complete++
        assert.ok(a.equals(NEW_A) && readFileSync(join(dir, 'sub/b.conf')).equals(NEW_B), `done reported early, ${ctx}`)
      }
    }
    assert.ok(complete >= 1, 'the whole script completes')
    assert.ok(cuts.size > 100, `${cuts.size} cuts tried`)
  })

  it('the complete script: modes set, temp files gone, a symlink at dest replaced (its target untouched)', () => {
    const dir = join(root, 'full')
    setup(dir)
    writeFileSync(join(dir, 'victim'), 'victim\n')
    symlinkSync(join(dir, 'victim'), join(dir, 'sub/b.conf'))
    // A symlink planted at the temp name is not written through either.
    symlinkSync(join(dir, 'victim'), join(dir, 'sub/a.conf.baremetal-tmp'))
    const script = buildUploadScript([
      {path: join(dir, 'sub/a.conf'), content: NEW_A, mode: 0o640},
      {path: join(dir, 'sub/b.conf'), content: NEW_B, mode: 0o600},
    ])
    const r = spawnSync('sh', ['-s'], {input: script, encoding: 'utf8'})
    assert.equal(r.status, 0, r.stderr)
    assert.ok(r.stdout.includes(UPLOAD_DONE))
    assert.equal(readFileSync(join(dir, 'victim'), 'utf8'), 'victim\n')
    assert.ok(lstatSync(join(dir, 'sub/b.conf')).isFile(), 'the link itself was replaced')
    assert.ok(readFileSync(join(dir, 'sub/b.conf')).equals(NEW_B))
    assert.equal(statSync(join(dir, 'sub/a.conf')).mode & 0o777, 0o640)
    assert.equal(statSync(join(dir, 'sub/b.conf')).mode & 0o777, 0o600)
    assert.deepEqual(readdirSync(join(dir, 'sub')).sort(), ['a.conf', 'b.conf'])
  })
})

import type {HeldCommand} from './types.js'

// What local and ssh `hold` share: collect the command's output, settle held once a line
// starts with `ready`, not held when it ends first or the timeout passes (then released).
export function holdWatcher(ready: string, timeoutMs: number, release: () => void, resolve: (h: HeldCommand) => void) {
  let out = ''
  let done = false
  const finish = (held: boolean, code: number | null) => {
    if (done) return
    done = true
    clearTimeout(timer)
    if (!held) release()
    resolve({held, output: out, exitCode: code, release})
  }
  const timer = setTimeout(() => finish(false, null), timeoutMs)
  return {
    stdout(d: Buffer | string): void {
      out += d.toString()
      if (out.split('\n').some((l) => l.startsWith(ready))) finish(true, null)
    },
    stderr(d: Buffer | string): void {
      out += d.toString()
    },
    finish,
  }
}

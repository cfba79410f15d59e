import {progressLine} from './report.js'
import type {LoadProgress} from './run.js'

// How `load` shows it is alive, on stderr: a bar redrawn in place on a terminal, a line
// every 10 s in a log, nothing with --json (stdout holds the one document).

export interface LoadProgressView {
  /** Called by runLoad as requests are acknowledged. */
  load?: (p: LoadProgress) => void
  /** Called by verifyKeys as keys are read back. */
  verify?: (done: number, total: number) => void
  /** Clear the bar before the report is printed. */
  clear(): void
}

export function loadProgressView(o: {json: boolean; tty: boolean; write?: (s: string) => void}): LoadProgressView {
  const write = o.write ?? ((s: string) => process.stderr.write(s))
  const clear = () => {
    if (o.tty) write('\r\x1b[2K')
  }
  if (o.json) return {clear}
  let lastLine = 0
  return {
    load: (p) => {
      if (o.tty) write(`\r\x1b[2K${progressLine(p)}`)
      else if (p.elapsedMs - lastLine >= 10_000) {
        lastLine = p.elapsedMs
        write(`${progressLine(p)}\n`)
      }
    },
    verify: o.tty ? (done, total) => write(`\r\x1b[2Kverifying ${done.toLocaleString('en-US')}/${total.toLocaleString('en-US')}`) : undefined,
    clear,
  }
}

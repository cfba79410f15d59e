// shell: run a command line through `sh -c`, for when you want shell features (pipes,
// redirections, `&&`, variables, globs). Same batching as command: all loop items in
// ONE script, one round trip per host. Insert variables as single words with
// `{{ quote var }}` so their content stays data.
//
// Parameters:
//   cmd         the shell text (also the free form `shell: …`); trailing chdir=…
//               creates=… removes=… words are options, as in Ansible
//   chdir       directory to run in
//   creates     do not run when this path exists
//   removes     do not run when this path does not exist
//   stdin       text fed to standard input (a newline is added)
//   executable  the shell (default /bin/sh)
//
// Example:
//   - name: flush the firewall
//     shell: iptables -F && iptables -X
//   - name: count running redis servers
//     shell: pgrep -c redis-server || true
//     register: running

import {mask, quote} from '../shell.js'
import {guardPaths, inlineOptions, runCommands, type RunSpec} from './command.js'
import {str} from './remote.js'
import type {ModuleContext, ModuleSpec, TaskItem} from './types.js'

// The user's text is one quoted argument of `sh -c`: a syntax error in one item cannot
// break the script that carries the other items.
export function shellSpec(ctx: ModuleContext, item: TaskItem): RunSpec | {error: string} {
  let text = str(item.args.cmd) ?? ''
  let inline: Record<string, string> = {}
  try {
    const parsed = inlineOptions(text)
    text = parsed.text
    inline = parsed.options
  } catch {
    // an unbalanced quote in what looked like an option: leave the text to sh
  }
  if (!text.trim()) return {error: 'shell: give the command text (cmd, or the free form `shell: …`)'}
  const exe = str(item.args.executable) || '/bin/sh'
  return {display: mask(text, ctx.secrets), line: `${quote(exe)} -c ${quote(text)}`, ...guardPaths(ctx, item.args, inline)}
}

export const shellModule: ModuleSpec = {
  name: 'shell',
  description: 'Run a command line through sh -c (pipes, redirections); all loop items in one round trip',
  freeForm: 'cmd',
  checkMode: true,
  args: {
    cmd: {type: 'string', required: true},
    chdir: {type: 'path'},
    creates: {type: 'path'},
    removes: {type: 'path'},
    stdin: {type: 'string'},
    executable: {type: 'path', default: '/bin/sh'},
  },
  run(ctx, items) {
    return runCommands(ctx, 'shell command', items.map((it) => shellSpec(ctx, it)))
  },
}

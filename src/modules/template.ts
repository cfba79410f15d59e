// template: render a Handlebars file on the controller (with the host's variables and
// `item`) and put the result on the host. Every loop item is rendered locally, then one
// sha256 probe for all destinations and one batched upload of the files that differ:
// a 100-port redis.conf task costs two round trips per host, one when nothing changed
// (plus one to read the old contents when --diff is on).
//
// Parameters:
//   src     template file on the controller (relative to the playbook's directory)
//   dest    path on the host; an existing directory or a trailing / puts it inside
//           under src's name. Absolute or ~/; a ".." component is refused; a symlink
//           at dest is replaced by the file (renamed over), never written through
//   mode    octal, e.g. '0644' (default: keep the existing mode; new files 0644)
//   force   replace a file whose content differs (default yes)
//   secret  the rendered content is secret (passwords): never shown in a diff; a file
//           whose old or new content holds requirepass/masterauth/a password line is
//           never diffed either ("content differs: secret file, not shown")
//
// Example:
//   - name: redis.conf per port
//     template:
//       src: templates/redis.conf.hbs
//       dest: "~/redis_cluster/{{ item }}/redis.conf"
//       mode: '0644'
//     loop: "{{ ports }}"

import {readFile} from 'node:fs/promises'
import {posix} from 'node:path'
import {renderText} from '../play/template.js'
import {expandHome} from '../shell.js'
import {controllerPath, definePushModule, type PushWant} from './copy.js'
import {badPath, dotDotPath, errorMessage, sha256, str} from './remote.js'
import {modeArg, type ModeArg} from './mode.js'
import type {ModuleContext, TaskItem} from './types.js'

// Each template file is read once per task, however many items render it.
function sourceReader(): (path: string) => Promise<string> {
  const cache = new Map<string, Promise<string>>()
  return (path) => {
    let p = cache.get(path)
    if (!p) {
      p = readFile(path, 'utf8')
      cache.set(path, p)
    }
    return p
  }
}

// Render one item into a PushWant, or the reason it cannot be (bad template, missing var).
export async function templateWant(ctx: ModuleContext, item: TaskItem, read: (p: string) => Promise<string>): Promise<PushWant | {error: string}> {
  const a = item.args
  const src = str(a.src)
  const destRaw = str(a.dest)
  if (!src) return {error: 'template: src is required'}
  if (!destRaw) return {error: 'template: dest is required'}
  const dest = expandHome(destRaw, ctx.facts.home)
  if (!posix.isAbsolute(dest)) return {error: `template: dest must be absolute (or start with ~/): ${destRaw}`}
  const bad = badPath(dest) ?? dotDotPath(dest)
  if (bad) return {error: `template: ${bad}`}
  const file = controllerPath(ctx, src, 'templates')
  let mode: ModeArg
  let text: string
  try {
    mode = modeArg(a.mode)
    const source = await read(file)
    text = renderText(source, item.item === undefined ? ctx.vars : {...ctx.vars, item: item.item}, {file: src})
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    return {error: code === 'ENOENT' ? `template: src ${file} not found` : errorMessage(error)}
  }
  const data = Buffer.from(text)
  return {dest, name: posix.basename(file), ...mode, force: a.force !== false, secret: a.secret === true, source: {kind: 'data', data, sha256: sha256(data)}}
}

export const templateModule = definePushModule({
  name: 'template',
  description: 'Render a Jinja template (the subset in play/jinja.ts) per loop item and upload only the files that differ, in one batch',
  args: {
    src: {type: 'path', required: true, controllerPath: true},
    dest: {type: 'path', required: true},
    mode: {type: 'mode'},
    force: {type: 'bool', default: true},
    secret: {type: 'bool', default: false},
  },
  want: (ctx, item, scope) => templateWant(ctx, item, scope.memo('read', sourceReader)),
})

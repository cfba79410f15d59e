// Load-time checks of every `{{ }}` string, condition and template file a task uses, so an
// unknown filter, an unsupported tag or a syntax error stops the run before any host changes.
import {existsSync, readFileSync} from 'node:fs'
import {dirname, isAbsolute, join, resolve} from 'node:path'
import {homedir} from 'node:os'
import {expandHome} from '../shell.js'
import type {YamlSource} from '../yamlfile.js'
import {checkTemplate, checkWhen, hasTemplate} from './template.js'

// Modules whose `src` is a template rendered on the controller.
const RENDERS_SRC = new Set(['template', 'redis_config'])

function walk(src: YamlSource, v: unknown, path: Array<string | number>): void {
  if (typeof v === 'string') {
    if (hasTemplate(v)) checkTemplate(v, src.where(path))
  } else if (Array.isArray(v)) v.forEach((x, i) => walk(src, x, [...path, i]))
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(src, x, [...path, k])
}

/** Check one raw task (as written in the playbook) at `path`. */
export function checkTaskTemplates(src: YamlSource, t: Record<string, unknown>, path: Array<string | number>, module: string, args: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(t)) {
    if (k === 'when' || k === 'changed_when' || k === 'failed_when') {
      const list = Array.isArray(v) ? v : [v]
      list.forEach((w, i) => checkWhen(w as string | boolean, src.where(Array.isArray(v) ? [...path, k, i] : [...path, k])))
    } else walk(src, v, [...path, k])
  }
  // assert's `that:` is conditions, not templates: the when-language check applies.
  if (module === 'assert' && (typeof args.that === 'string' || Array.isArray(args.that))) {
    const list = Array.isArray(args.that) ? args.that : [args.that]
    list.forEach((c, i) => typeof c === 'string' && checkWhen(c, src.where(Array.isArray(args.that) ? [...path, module, 'that', i] : [...path, module, 'that'])))
  }
  const file = args.src
  if (RENDERS_SRC.has(module) && typeof file === 'string' && file && !hasTemplate(file)) {
    let text: string
    try {
      text = readFileSync(resolve(dirname(src.file), expandHome(file, homedir())), 'utf8')
    } catch {
      return // a missing file is reported by the task itself, with its path
    }
    checkTemplate(text, {file})
  }
}

/** A role task's template, found where the module will look (the role's templates/ first), checked at load. */
export function checkRoleTemplate(module: string, args: Record<string, unknown>, roleDir: string): void {
  const file = args.src
  if (!RENDERS_SRC.has(module) || typeof file !== 'string' || !file || hasTemplate(file) || isAbsolute(file)) return
  const found = [join(roleDir, 'templates'), roleDir, join(roleDir, 'tasks')].map((d) => resolve(d, file)).find((f) => existsSync(f))
  if (found) checkTemplate(readFileSync(found, 'utf8'), {file: found})
}

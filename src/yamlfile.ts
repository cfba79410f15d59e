import {readFileSync} from 'node:fs'
import {isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node} from 'yaml'
import {type ErrorWhere, InputError} from './errors.js'

// Inventories and playbooks are read as YAML 1.1, like Ansible (PyYAML) reads them,
// so files users already have mean the same thing: `yes`/`no`/`on`/`off` are booleans
// and `0644` is octal (420). Two 1.1 quirks are dropped on purpose: sexagesimal
// numbers (`1:20` stays a string, not 80) and timestamps (stay strings).

export interface YamlSource {
  file: string
  value: unknown
  /** Line/column of the key or item at a path, for error messages. */
  where(path: ReadonlyArray<string | number>): ErrorWhere
}

type ErrorCtor = new (message: string, opts: {where?: ErrorWhere; hint?: string; cause?: unknown}) => InputError

/** Parse a YAML file keeping positions, so every later validation error can name file:line:col. */
export function loadYaml(file: string, ErrorClass: ErrorCtor = InputError, text?: string): YamlSource {
  let src: string
  try {
    src = text ?? readFileSync(file, 'utf8')
  } catch (error) {
    const e = error as NodeJS.ErrnoException
    throw new ErrorClass(`cannot read ${file}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`, {
      where: {file},
      hint: e.code === 'ENOENT' ? 'check the path (relative paths are resolved from the current directory)' : undefined,
    })
  }
  return parseYaml(src, file, ErrorClass)
}

// PyYAML, which Ansible reads with, takes yes/no/on/off/true/false as booleans but not
// y/Y/n/N: `answer: n` is the string "n" there, and must be here.
function pyYamlBool(test: RegExp): RegExp {
  return new RegExp(test.source.replace(/\bY\|y\||\bN\|n\|/, ''), test.flags)
}

export function parseYaml(src: string, file: string, ErrorClass: ErrorCtor = InputError): YamlSource {
  const lineCounter = new LineCounter()
  const doc = parseDocument(src, {
    version: '1.1',
    lineCounter,
    prettyErrors: false,
    uniqueKeys: true,
    customTags: (tags) =>
      tags
        .filter((t) => typeof t === 'string' || ((t as {format?: string}).format !== 'TIME' && t.tag !== 'tag:yaml.org,2002:timestamp'))
        .map((t) => (typeof t !== 'string' && t.tag === 'tag:yaml.org,2002:bool' && t.test ? {...t, test: pyYamlBool(t.test)} : t)),
  })
  const first = doc.errors[0]
  if (first) {
    const pos = first.linePos?.[0] ?? lineCounter.linePos(first.pos[0])
    const msg = first.message.split('\n')[0].replace(/ at line \d+, column \d+.*$/, '')
    throw new ErrorClass(`invalid YAML: ${msg}`, {
      where: {file, line: pos.line, col: pos.col},
      hint: yamlHint(first.code),
    })
  }
  let value: unknown
  try {
    value = doc.toJS({maxAliasCount: 1000})
  } catch (error) {
    throw new ErrorClass(`invalid YAML: ${(error as Error).message}`, {where: {file}})
  }
  return {file, value, where: (path) => ({file, ...locate(doc, lineCounter, path)})}
}

function yamlHint(code: string): string {
  switch (code) {
    case 'DUPLICATE_KEY':
      return 'each key may appear once in a mapping: remove or rename the repeated one'
    case 'BAD_INDENT':
    case 'MISSING_CHAR':
      return 'check the indentation (spaces, not tabs) and that every "key: value" has its colon'
    case 'TAB_AS_INDENT':
      return 'YAML indentation must use spaces, not tabs'
    default:
      return 'quote values that contain ": ", "{{" at the start, "#" or other YAML punctuation'
  }
}

function locate(doc: Document, lc: LineCounter, path: ReadonlyArray<string | number>): {line?: number; col?: number} {
  let node: unknown = doc.contents
  let at: Node | undefined = doc.contents ?? undefined
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg))
      if (!pair) break
      at = (pair.key as Node) ?? at
      node = pair.value
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg]
      if (!item) break
      at = item as Node
      node = item
    } else break
  }
  const offset = at?.range?.[0]
  if (offset === undefined) return {}
  return lc.linePos(offset)
}

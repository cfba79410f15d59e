import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {describe, it} from 'node:test'
import {renderText} from '../../../src/play/template.js'

// Differential check against Python's Jinja2 set up as Ansible's template module sets it up:
// trim_blocks, undefined is an error, none prints as nothing, and as many trailing newlines
// as the source has (Templar.do_template's preserve_trailing_newlines). Skipped where python3
// has no jinja2.
const PY = `
import json, sys, jinja2
env = jinja2.Environment(trim_blocks=True, undefined=jinja2.StrictUndefined, finalize=lambda x: '' if x is None else x)
nl = lambda s: len(s) - len(s.rstrip('\\n'))
out = []
for src, v in json.load(sys.stdin):
    try:
        res = env.from_string(src).render(**v)
        out.append(res + '\\n' * max(0, nl(src) - nl(res)))
    except Exception as e: out.append('ERROR ' + type(e).__name__)
print(json.dumps(out))
`
const have = spawnSync('python3', ['-c', 'import jinja2'], {encoding: 'utf8'}).status === 0

const V = {a: 1, s: "it's", l: ['x', 'y'], d: {k: 'v', n: [1, 2]}, t: true, n: null, xs: [3, 1, 2], port: '6379', users: [{name: 'ann'}, {name: 'bob'}]}
const CASES: Array<[string, Record<string, unknown>]> = [
  ['{{ l }} {{ d }} {{ t }} {{ n }} {{ s }} {{ [s] }}', V],
  ['{{ 4 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 1.5 * 2 }} {{ 0.1 + 0.2 }}', V],
  ['{% if a %}\nA\n{% endif %}\nB\n{% for x in l %}\n- {{ x }}\n{% endfor %}\n', V],
  ['  {% if a %}\n  A\n  {% endif %}\n', V],
  ['{%- if a -%}  A  {%- endif -%}\n\nx', V],
  ['{# c #}\n{# d #}x\n{#- e -#}  y', V],
  ['{% for x in xs | sort %}{{ loop.index }}{{ x }}{% if not loop.last %},{% endif %}{% endfor %}', V],
  ['{% set y = a + 1 %}{{ y }}{% for i in l %}{% set y = 5 %}{{ y }}{% endfor %}{{ y }}', V],
  ["{{ l | join(', ') }}|{{ port | int + 1 }}|{{ 'x' ~ a }}|{{ l | length }}|{{ s | upper }}|{{ s | replace(\"'\", '') }}", V],
  ["{{ users | map(attribute='name') | list }}|{{ xs | select('odd') | list }}|{{ xs | reject('odd') | list }}|{{ l | first }}{{ l | last }}", V],
  ["{{ nope | default('dflt') }}|{{ '' | default('e', true) }}|{{ d.k if d.k is defined else 'no' }}|{{ d['n'][1] }}", V],
  ['{{ range(5) | list }}{{ range(2, 9, 3) | list }}', V],
  ['{% for x in [] %}a{% else %}empty{% endfor %}\n', V],
  ['{% for k, v in d.items() %}{{ k }}={{ v }}\n{% endfor %}', V],
  ['{{ {"a": [1, none, true]} }}', V],
  ['{{ nope }}', V],
  ['{{ d.zzz }}', V],
  ['x\n\n', V],
  ['{% if a %}\n{% endif %}\n', V],
  ['{% raw %}{{ a }}{% endraw %}\n', V],
]

describe('templates render as Jinja2 renders them (trim_blocks, as in Ansible)', {skip: !have && 'python3 jinja2 not installed'}, () => {
  it(`${CASES.length} templates`, () => {
    const py = spawnSync('python3', ['-c', PY], {input: JSON.stringify(CASES), encoding: 'utf8'})
    assert.equal(py.status, 0, py.stderr)
    const want = JSON.parse(py.stdout) as string[]
    CASES.forEach(([src, vars], i) => {
      let got: string
      try {
        got = renderText(src, vars)
      } catch {
        got = 'ERROR'
      }
      assert.equal(got.startsWith('ERROR') ? 'ERROR' : got, want[i].startsWith('ERROR') ? 'ERROR' : want[i], src)
    })
  })
})

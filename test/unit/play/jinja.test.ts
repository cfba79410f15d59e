import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {TemplateError} from '../../../src/errors.js'
import {evaluate} from '../../../src/play/expr.js'
import {checkTemplate, checkWhen, renderString, renderText} from '../../../src/play/template.js'
import {loadInventory} from '../../../src/inventory/inventory.js'
import {allModules} from '../../../src/modules/index.js'
import {loadPlaybook} from '../../../src/play/playbook.js'
import {runPlaybook, type Reporter} from '../../../src/play/runner.js'
import type {ModuleSpec} from '../../../src/modules/types.js'

const V = {
  a: 1,
  s: 'Hello',
  l: ['b', 'a', 'b'],
  n: null,
  t: true,
  f: false,
  port: '6379',
  d: {k: 'v', n: 2},
  users: [
    {name: 'ann', admin: true},
    {name: 'bob', admin: false},
  ],
  groups: {redis: ['h1', 'h2'], all: ['h1', 'h2']},
  hostvars: {h1: {ansible_host: '10.0.0.1'}, h2: {ansible_host: '10.0.0.2'}},
  inventory_hostname: 'h1',
  play_hosts: ['h1', 'h2'],
}
const r = (src: string, vars: Record<string, unknown> = V) => renderString(src, vars)
const t = (src: string, vars: Record<string, unknown> = V) => renderText(src, vars, {file: 'x.j2'})

describe('expressions in {{ }}', () => {
  const cases: Array<[string, unknown]> = [
    // literals
    ["{{ 'a' }}", 'a'],
    ['{{ "b" }}', 'b'],
    ['{{ 42 }}', 42],
    ['{{ 1.5 }}', 1.5],
    ['{{ true }}', true],
    ['{{ False }}', false],
    ['{{ none }}', null],
    ['{{ [1, "x"] }}', [1, 'x']],
    ["{{ {'k': 1} }}", {k: 1}],
    // names, attributes, subscripts
    ['{{ d.k }}', 'v'],
    ["{{ d['n'] }}", 2],
    ['{{ l[0] }}', 'b'],
    ['{{ l[-1] }}', 'b'],
    ['{{ l[1:] }}', ['a', 'b']],
    ["{{ groups['redis'] }}", ['h1', 'h2']],
    ['{{ hostvars[inventory_hostname].ansible_host }}', '10.0.0.1'],
    ["{{ hostvars['h2']['ansible_host'] }}", '10.0.0.2'],
    // arithmetic and concatenation
    ['{{ a + 2 * 3 }}', 7],
    ['{{ 7 // 2 }}', 3],
    ['{{ 7 % 3 }}', 1],
    ['{{ 2 ** 3 }}', 8],
    ['{{ 10 - a }}', 9],
    ["{{ 'x' ~ a ~ 'y' }}", 'x1y'],
    ['{{ port | int + 10000 }}', 16379],
    // comparisons, membership, logic, inline if
    ['{{ a == 1 }}', true],
    ['{{ a != 1 }}', false],
    ['{{ a < 2 and a >= 1 }}', true],
    ["{{ 'a' in l }}", true],
    ["{{ 'z' not in l }}", true],
    ["{{ 'k' in d }}", true],
    ['{{ not f }}', true],
    ['{{ f or a }}', 1],
    ["{{ 'y' if t else 'n' }}", 'y'],
    ['{{ (a + 1) * 2 }}', 4],
    // tests
    ['{{ nope is defined }}', false],
    ['{{ nope is not defined }}', true],
    ['{{ n is none }}', true],
    ['{{ s is string }}', true],
    ['{{ a is number }}', true],
    ['{{ l is string }}', false],
    // filters
    ["{{ nope | default('x') }}", 'x'],
    ["{{ nope | d('x') }}", 'x'],
    ["{{ '' | default('x') }}", ''],
    ["{{ '' | default('x', true) }}", 'x'],
    ['{{ n | default(5, boolean=true) }}', 5],
    ["{{ l | join(',') }}", 'b,a,b'],
    ['{{ l | join }}', 'bab'],
    ["{{ '42' | int }}", 42],
    ["{{ 'x' | int }}", 0],
    ["{{ 'yes' | bool }}", true],
    ["{{ 'off' | bool }}", false],
    ['{{ a | string }}', '1'],
    ['{{ l | length }}', 3],
    ['{{ s | lower }}', 'hello'],
    ['{{ s | upper }}', 'HELLO'],
    ["{{ s | replace('l', 'L') }}", 'HeLLo'],
    ["{{ 'a-1' | regex_replace('(\\\\w)-(\\\\d)', '\\\\2:\\\\1') }}", '1:a'],
    ["{{ groups['redis'] | map('extract', hostvars, 'ansible_host') | list }}", ['10.0.0.1', '10.0.0.2']],
    ["{{ ['h1'] | map('extract', hostvars) | list }}", [{ansible_host: '10.0.0.1'}]],
    ["{{ users | map(attribute='name') | list }}", ['ann', 'bob']],
    ["{{ l | map('upper') | list }}", ['B', 'A', 'B']],
    ["{{ [1, 2, 3, 4] | select('even') | list }}", [2, 4]],
    ["{{ [1, 2, 3] | reject('equalto', 2) | list }}", [1, 3]],
    ["{{ users | selectattr('admin') | map(attribute='name') | first }}", 'ann'],
    ['{{ l | first }}', 'b'],
    ['{{ l | last }}', 'b'],
    ['{{ l | unique }}', ['b', 'a']],
    ['{{ l | sort }}', ['a', 'b', 'b']],
    ['{{ l | sort(reverse=true) | first }}', 'b'],
    ['{{ d | to_json }}', '{"k": "v", "n": 2}'],
    ['{{ d | to_yaml }}', '{k: v, n: 2}\n'],
    ["{{ '  x ' | trim }}", 'x'],
    ['{{ range(3) | list }}', [0, 1, 2]],
    ['{{ range(1, 7, 2) | list }}', [1, 3, 5]],
    ["{{ 'a b' | quote }}", "'a b'"],
    ["{{ t | ternary('on', 'off') }}", 'on'],
    ['{{ s.lower() }}', 'hello'],
    // the Handlebars helpers that playbooks written for earlier versions use
    ['{{ add port 10000 }}', 16379],
    ['{{ add a 2 -1 }}', 2],
    ['{{ default nope "x" }}', 'x'],
    ['{{ yesno t }}', 'yes'],
    ["{{ quote (expanduser '~/d d') }}", "'/home/u/d d'"],
  ]
  for (const [src, want] of cases) it(`${src} → ${JSON.stringify(want)}`, () => assert.deepEqual(r(src, {...V, ansible_user_dir: '/home/u'}), want))

  it('prints values as Ansible does: Python repr for lists and dicts, True/False, none as nothing', () => {
    assert.equal(r('x={{ l }}'), "x=['b', 'a', 'b']")
    assert.equal(r('{{ d }}!'), "{'k': 'v', 'n': 2}!")
    assert.equal(r('{{ t }}/{{ f }}/{{ n }}/{{ 4 / 2 }}/{{ 1 / 4 }}'), 'True/False//2.0/0.25')
    assert.equal(r(`{{ ["it's", 'a\\nb'] }}.`), `["it's", 'a\\nb'].`)
  })
})

// Each error: what is wrong, where (file:line:col in a template file; the task line and the column
// in the string for a playbook string), and what to write instead.
describe('errors name the construct, where it is and what to write', () => {
  const fails = (f: () => unknown, msg: RegExp, where: {line?: number; col?: number} = {}, hint?: RegExp) =>
    assert.throws(f, (e: unknown) => {
      assert.ok(e instanceof TemplateError, String(e))
      assert.match(e.message, msg)
      if (where.line !== undefined) assert.equal(e.where.line, where.line, e.describe())
      if (where.col !== undefined) assert.equal(e.where.col, where.col, e.describe())
      if (hint) assert.match(e.hint ?? '', hint)
      assert.equal(e.exitCode, 5)
      return true
    })
  it('undefined names, anywhere', () => {
    fails(() => t('a\n  {{ nope }}'), /undefined variable "nope"/, {line: 2, col: 6}, /default\('fallback'\)|is defined/)
    fails(() => t('{{ d.missing }}'), /undefined variable "d.missing"/, {line: 1, col: 6})
    fails(() => t("{{ hostvars['h9'].ansible_host }}"), /undefined variable "hostvars\['h9'\]\.ansible_host"/)
    fails(() => t('{% if nope == 1 %}x{% endif %}'), /undefined variable "nope"/, {line: 1, col: 7})
    fails(() => t('{% for x in nope %}{% endfor %}'), /undefined variable "nope"/)
    fails(() => t('{{ nope | upper }}'), /undefined variable "nope"/)
    fails(() => t('{{ nope is none }}'), /undefined variable "nope"/)
    fails(() => t('{{ a + nope }}'), /undefined variable "nope"/)
    fails(() => t('{{ l[7] }}'), /index 7 is out of range/)
    fails(() => renderString('x {{ nope }}', V, {file: 'p.yml', line: 9}), /undefined variable "nope" \(in "x \{\{ nope \}\}", column 6\)/, {line: 9})
  })
  it('unsupported tags and filters, at parse time', () => {
    fails(() => t('ok\n{% macro m() %}{% endmacro %}'), /\{% macro %\} is not supported/, {line: 2, col: 4})
    fails(() => t("{% include 'x.j2' %}"), /\{% include %\} is not supported/, {line: 1}, /copy the included text/)
    fails(() => t('{% foo %}'), /unknown tag \{% foo %\}/, {}, /supported tags/)
    fails(() => t('{{ a | frobnicate }}'), /unknown filter "frobnicate"/, {line: 1, col: 8}, /supported filters: .*regex_replace/)
    fails(() => t('{{ a is frob }}'), /unknown test "is frob"/)
    fails(() => t('{% if a %}x'), /\{% if a %\} is never closed/, {}, /endif/)
    fails(() => t('x{% endif %}'), /unexpected \{% endif %\}/)
    fails(() => t('{{ a '), /"\{\{" is never closed/)
    fails(() => t('{{ a b }}'), /unexpected "b"/)
    fails(() => t("{{ 'x' if a }}"), /needs "else y"/)
    fails(() => t('{{#unless a}}x{{/unless}}'), /Handlebars block \{\{#unless\}\} is not supported/)
    fails(() => t("{{ lookup('env', 'HOME') }}"), /lookup\(\) is not supported/)
    fails(() => t('{% set x %}y{% endset %}'), /set x %\}…\{% endset %\} blocks are not supported/)
  })
  it('values of the wrong type instead of guesses', () => {
    fails(() => t('{{ port + 1 }}'), /"\+" needs numbers, got a string/, {}, /\| int/)
    fails(() => t('{{ port < 7000 }}'), /cannot compare a string with a number/)
    fails(() => t('{{ 1 // 0 }}'), /division by zero/)
    fails(() => t('{% for x in 5 %}{% endfor %}'), /cannot loop over number/)
  })
  it('checks syntax without rendering (what the playbook loader runs on every string and template file)', () => {
    checkTemplate('{{ nope | default(1) }}{% if x %}{% endif %}')
    assert.throws(() => checkTemplate('{{ a | nope }}', {file: 'f.j2'}), /unknown filter/)
    assert.throws(
      () => checkWhen('a | nope', {file: 'p.yml', line: 3}),
      (e: unknown) => e instanceof TemplateError && /unknown filter "nope" in condition "a \| nope" \(column 5\)/.test(e.message) && e.where.line === 3,
    )
  })
})

describe('when: conditions', () => {
  it('an undefined name is an error, not a skipped or a run task', () => {
    assert.throws(() => evaluate("ansible_os_family == 'Debian'", {}), /undefined variable "ansible_os_family"/)
    assert.throws(() => evaluate('not nosuchvar', {}), /undefined variable "nosuchvar"/)
    assert.equal(evaluate('nosuchvar is not defined or nosuchvar', {}), true)
    assert.equal(evaluate("x | default('') == ''", {}), true)
  })
  it('a string spelled like a boolean is refused as a condition (Jinja would call "false" true)', () => {
    assert.throws(() => evaluate('flag', {flag: 'false'}), /the string "false" used as a condition/)
    assert.throws(() => evaluate('not flag', {flag: 'no'}), /"no"/)
    assert.equal(evaluate('flag | bool', {flag: 'false'}), false)
    assert.equal(evaluate('out', {out: 'some output'}), true)
  })
})

describe('{% %} blocks, comments and whitespace as Ansible renders them (trim_blocks on)', () => {
  const vars = {...V, xs: ['a', 'b', 'c'], on: true}
  it('if/elif/else', () => {
    const src = '{% if a == 2 %}\ntwo\n{% elif a == 1 %}\none\n{% else %}\nother\n{% endif %}\nend\n'
    assert.equal(t(src, vars), 'one\nend\n')
    assert.equal(t(src, {...vars, a: 5}), 'other\nend\n')
  })
  it('for with loop.index/first/last, for-else, and a filtered loop', () => {
    // trim_blocks eats the newline after {% endif %}, as in Ansible: that is why such lines run together.
    assert.equal(t('{% for x in xs %}\n{{ loop.index }}:{{ x }}{% if loop.first %} first{% endif %}{% if loop.last %} last{% endif %}\n{% endfor %}\n', vars), '1:a first2:b3:c last\n')
    assert.equal(t('{% for x in xs %}\n{{ loop.index }}:{{ x }}{{ " first" if loop.first else "" }}\n{% endfor %}\n', vars), '1:a first\n2:b\n3:c\n')
    assert.equal(t('{% for x in [] %}x{% else %}none{% endfor %}', vars), 'none')
    assert.equal(t('{% for x in xs if x != "b" %}{{ x }}{% endfor %}', vars), 'ac')
    assert.equal(t('{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}', vars), 'k=v;n=2;')
    assert.equal(
      t('{% for h in groups.redis %}{{ hostvars[h].ansible_host }}{{ "," if not loop.last }}{% endfor %}'.replace('"," if not loop.last', '"," if not loop.last else ""'), vars),
      '10.0.0.1,10.0.0.2',
    )
  })
  it('set (scoped to its loop, as in Jinja), comments, raw', () => {
    assert.equal(t('{% set x = a + 1 %}{{ x }}', vars), '2')
    assert.equal(t('{% set x = 0 %}{% for i in xs %}{% set x = 9 %}{% endfor %}{{ x }}', vars), '0')
    assert.equal(t('a{# a comment\n spanning lines #}\nb', vars), 'ab')
    assert.equal(t('{% raw %}{{ not rendered }}{% endraw %}', vars), '{{ not rendered }}')
  })
  it('whitespace control and trim_blocks', () => {
    assert.equal(t('a  {%- if on -%}  b  {%- endif -%}  c', vars), 'abc')
    assert.equal(t('x\n  {% if on %}\ny\n  {% endif %}\nz', vars), 'x\n  y\n  z')
    assert.equal(t('{{ a }}\n{{ a }}\n', vars), '1\n1\n')
    assert.equal(t('a {{- " b " -}} c', vars), 'a b c')
  })
  it('keeps as many trailing newlines as the template has', () => {
    assert.equal(t('{% if on %}\nx\n{% endif %}\n', vars), 'x\n')
    assert.equal(t('{% if not on %}\nx\n{% endif %}\n', vars), '\n')
  })
  it('Handlebars blocks from earlier versions: {{#if}}/{{else}}, {{#each}} with this, standalone lines', () => {
    assert.equal(t('{{#if on}}\nyes\n{{else}}\nno\n{{/if}}\n', vars), 'yes\n')
    assert.equal(t('{{#each xs}}\n- {{ this }}\n{{/each}}\n', vars), '- a\n- b\n- c\n')
    assert.equal(t('v={{#if on}}1{{else}}0{{/if}}.', vars), 'v=1.')
  })
})

// The per-port redis.conf of the legacy playbook (shared/reference/legacy-workflow.md), as
// its users write it: {{ item }} is the port. Jinja (trim_blocks, as Ansible) gives exactly this.
describe('the legacy redis.conf.j2', () => {
  const legacy = 'port {{ item }}\ncluster-enabled yes\ncluster-config-file nodes.conf\ncluster-node-timeout 5000\ndaemonize yes\nlogfile redis.log\nappendonly no\nprotected-mode no\nsave ""\n'
  it('renders as Jinja would', () => {
    assert.equal(renderText(legacy, {item: 6379}, {file: 'redis.conf.j2'}), legacy.replace('{{ item }}', '6379'))
  })
  it('and with the habits such templates grow', () => {
    const src =
      '{# per-port config #}\nport {{ item }}\n{% if redis_password is defined %}\nrequirepass {{ redis_password }}\n{% endif %}\ncluster-node-timeout {{ node_timeout | default(5000) }}\nbind {{ bind | join(" ") }}\n'
    assert.equal(renderText(src, {item: 6380, bind: ['10.0.0.1', '127.0.0.1']}), 'port 6380\ncluster-node-timeout 5000\nbind 10.0.0.1 127.0.0.1\n')
    assert.equal(renderText(src, {item: 6380, bind: ['::1'], redis_password: 's3'}), 'port 6380\nrequirepass s3\ncluster-node-timeout 5000\nbind ::1\n')
  })
})

describe('runner: hostvars, groups, play_hosts; errors at load and in when:', () => {
  const INV = 'all:\n  hosts:\n    a: {ansible_connection: local, color: red}\n    b: {ansible_connection: local, color: blue}\n'
  const quiet: Reporter = {playStart() {}, taskStart() {}, hostResult() {}, taskEnd() {}, log() {}, warn() {}}
  const seen: string[] = []
  const probe: ModuleSpec = {
    name: 'probe_value',
    description: 'records v',
    args: {v: {type: 'string'}},
    checkMode: true,
    async run(ctx, items) {
      for (const it of items) seen.push(`${ctx.host}:${String(it.args.v)}`)
      return items.map(() => ({status: 'ok' as const}))
    },
  }
  const modules = new Map([...allModules(), [probe.name, probe]])
  const run = (yaml: string) => runPlaybook({inventory: loadInventory('inv.yml', INV), playbook: loadPlaybook('/tmp/pb.yml', modules, yaml), reporter: quiet})

  it('resolves hostvars, groups, inventory_hostname and play_hosts', async () => {
    seen.length = 0
    const v = "{{ inventory_hostname }} {{ groups['all'] | map('extract', hostvars, 'color') | join(',') }} {{ play_hosts | length }} {{ hostvars[play_hosts[1]].color }}"
    const res = await run(`- hosts: all\n  tasks:\n    - probe_value: {v: "${v}"}\n`)
    assert.equal(res.exitCode, 0)
    assert.deepEqual(seen.sort(), ['a:a red,blue 2 blue', 'b:b red,blue 2 blue'])
  })
  it('an undefined name in when: stops the run as bad input at the task (exit 5), it does not skip', async () => {
    await assert.rejects(
      run("- hosts: all\n  tasks:\n    - probe_value: {v: x}\n      when: ansible_no_such_fact == 'Debian'\n"),
      (e: unknown) => e instanceof TemplateError && /undefined variable "ansible_no_such_fact" in condition/.test(e.message) && e.where.line === 3,
    )
  })
  it('an unknown filter in a task argument or condition fails when the playbook loads', () => {
    assert.throws(
      () => loadPlaybook('/tmp/pb.yml', modules, '- hosts: all\n  tasks:\n    - probe_value: {v: "{{ a | nope }}"}\n'),
      (e: unknown) => e instanceof TemplateError && /unknown filter "nope"/.test(e.message) && e.where.line === 3,
    )
    assert.throws(
      () => loadPlaybook('/tmp/pb.yml', modules, '- hosts: all\n  tasks:\n    - probe_value: {v: x}\n      when:\n        - a is frob\n'),
      (e: unknown) => e instanceof TemplateError && /unknown test "is frob"/.test(e.message) && e.where.line === 5,
    )
  })
})

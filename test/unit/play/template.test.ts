import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {TemplateError} from '../../../src/errors.js'
import {renderDeep, renderString, renderText} from '../../../src/play/template.js'

describe('templates', () => {
  it('renders Ansible-style {{ var }} with spaces, without HTML escaping', () => {
    assert.equal(renderText('port {{ item }}\nbind {{ addr }}', {item: 6379, addr: '10.1.1.1'}), 'port 6379\nbind 10.1.1.1')
    assert.equal(renderText('save "{{ s }}" & <x>', {s: 'a&b<c>'}), 'save "a&b<c>" & <x>')
  })

  it('keeps the type of a lone {{ var }} (lists stay lists for loop:)', () => {
    assert.deepEqual(renderString('{{ ports }}', {ports: [1, 2]}), [1, 2])
    assert.equal(renderString('{{ n }}', {n: 5}), 5)
    assert.equal(renderString('{{ s }}\n', {s: 'x'}), 'x\n')
    assert.deepEqual(renderDeep({a: ['{{ x }}', 'y-{{ x }}']}, {x: 1}), {a: [1, 'y-1']})
  })

  it('fails on an undefined variable naming it, the file and the line', () => {
    assert.throws(
      () => renderText('a\nb {{ nope }}', {}, {file: 't.hbs', line: 10}),
      (e: unknown) => e instanceof TemplateError && /"nope"/.test(e.message) && e.where.file === 't.hbs' && e.where.line === 11,
    )
    assert.throws(
      () => renderString('x {{ a.b }}', {a: {}}),
      (e: unknown) => e instanceof TemplateError && /"a\.b"/.test(e.message),
    )
  })

  it('has arithmetic and default helpers', () => {
    assert.equal(renderText('{{ add port 10000 }}', {port: '6379'}), '16379')
    assert.equal(renderText('{{ add a b -1 }}', {a: 6379, b: 100}), '6478')
    assert.equal(renderText('{{ default missing "x" }}', {}), 'x')
    assert.equal(renderText('{{ yesno f }}/{{ yesno t }}/{{ yesno s }}', {f: false, t: true, s: 'false'}), 'no/yes/no')
  })

  it('does not render a variable value twice (no template injection)', () => {
    assert.equal(renderText('v={{ x }}', {x: '{{ secret }}', secret: 'leak'}), 'v={{ secret }}')
    assert.equal(renderString('{{ x }}', {x: '{{ secret }}', secret: 'leak'}), '{{ secret }}')
  })

  it('reads Jinja filters as Jinja (they used to be refused as Handlebars)', () => {
    assert.equal(renderText('{{ x | default("y") }}', {x: 1}), '1')
    assert.equal(renderText('{{ x | default("y") }}', {}), 'y')
  })
})

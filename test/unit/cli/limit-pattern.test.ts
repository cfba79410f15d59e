import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {InventoryError} from '../../../src/errors.js'
import {loadInventory, selectHosts} from '../../../src/inventory/inventory.js'
import {orderedTerms, withLimit} from '../../../src/inventory/pattern.js'

// --limit and hosts: patterns with Ansible's rules: ":"/"," unions, "&" intersections and
// "!" exclusions applied in that order, only exclusions meaning "all but", globs.
const inv = loadInventory(
  'i.yml',
  `all:
  children:
    redis: {hosts: {h1: , h2: , h3: }}
    web: {hosts: {h3: , w1: }}
`,
)
const names = (p: string | string[]) => selectHosts(inv, p).map((h) => h.name)

describe('cli: limit patterns', () => {
  it("only exclusions: every host but those ('!h2' matched nothing)", () => {
    assert.deepEqual(names('!h2'), ['h1', 'h3', 'w1'])
    assert.deepEqual(names('!h2:!web'), ['h1'])
    assert.deepEqual(names('&redis'), ['h1', 'h2', 'h3'])
  })

  it('unions, intersections and exclusions in any written order', () => {
    assert.deepEqual(names('redis:web'), ['h1', 'h2', 'h3', 'w1'])
    assert.deepEqual(names('redis,web'), ['h1', 'h2', 'h3', 'w1'])
    assert.deepEqual(names('!h1:redis'), ['h2', 'h3'])
    assert.deepEqual(names('&web:redis'), ['h3'])
    assert.deepEqual(names('redis:&web:!h3'), [])
    assert.deepEqual(names('h*:!h2'), ['h1', 'h3'])
  })

  it("a command's group ∩ its --limit, whatever the limit holds", () => {
    assert.deepEqual(names(withLimit('redis', '!h2')), ['h1', 'h3'])
    assert.deepEqual(names(withLimit('redis', 'h1:w1')), ['h1'])
    assert.deepEqual(names(withLimit('redis', undefined)), ['h1', 'h2', 'h3'])
  })

  it('orderedTerms puts unions first and adds "all" when there is none', () => {
    assert.deepEqual(orderedTerms('!a:&b'), [
      {op: 'union', name: 'all'},
      {op: 'and', name: 'b'},
      {op: 'not', name: 'a'},
    ])
    assert.deepEqual(orderedTerms(''), [])
  })

  it('a term matching nothing is still an error', () => {
    assert.throws(() => names('!nosuch'), InventoryError)
  })
})

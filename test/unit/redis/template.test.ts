import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {describe, it} from 'node:test'
import {renderText} from '../../../src/play/template.js'
import {loadYaml} from '../../../src/yamlfile.js'

// The bundled redis.conf template with the bundled defaults: what every instance starts with.
const src = readFileSync('templates/redis.conf.hbs', 'utf8')
const defaults = loadYaml('playbooks/defaults.yml').value as Record<string, unknown>
const render = (vars: Record<string, unknown> = {}) => renderText(src, {...defaults, inventory_hostname: 'h1', redis_bind: '192.0.2.1', item: 7000, ...vars}, {file: 'templates/redis.conf.hbs'})

describe('templates/redis.conf.hbs', () => {
  it("min-replicas-to-write is off by default (Redis' own default)", () => {
    assert.doesNotMatch(render(), /min-replicas/)
  })
  it('redis_min_replicas_to_write: a master refuses writes no replica can take (against writes a failover would throw away)', () => {
    const conf = render({redis_min_replicas_to_write: 1, redis_min_replicas_max_lag: 5})
    assert.match(conf, /^min-replicas-to-write 1$/m)
    assert.match(conf, /^min-replicas-max-lag 5$/m)
  })
})

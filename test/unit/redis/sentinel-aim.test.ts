import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {pickAim} from '../../../src/redis/sentinel-aim.js'

const R1 = '10.0.0.2:7000'
const R2 = '10.0.0.3:7000'
const heard = (sentinel: string, ages: Record<string, number>) => ({sentinel, replicas: new Map(Object.entries(ages).map(([r, age]) => [r, {age}]))})

describe('pickAim: when to send SENTINEL FAILOVER so the Sentinel sees the promotion early', () => {
  it('waits until the Sentinel heard from every replica ~620 ms before', () => {
    assert.deepEqual(pickAim([heard('s1', {[R1]: 20, [R2]: 21})], [R1, R2], 1000), {sentinel: 's1', at: 1599})
  })

  it('takes the Sentinel that fits soonest', () => {
    const aim = pickAim([heard('s1', {[R1]: 100, [R2]: 100}), heard('s2', {[R1]: 500, [R2]: 500})], [R1, R2], 0)
    assert.deepEqual(aim, {sentinel: 's2', at: 120})
  })

  it('none while every Sentinel last heard from a replica too long ago (it would ask it again before the promotion)', () => {
    assert.equal(pickAim([heard('s1', {[R1]: 4000, [R2]: 4000}), heard('s2', {[R1]: 700, [R2]: 700})], [R1, R2], 0), undefined)
  })

  it('a Sentinel that heard from the replicas at different times, or does not know one, is left out', () => {
    assert.equal(pickAim([heard('s1', {[R1]: 100, [R2]: 5100})], [R1, R2], 0), undefined)
    assert.equal(pickAim([heard('s1', {[R1]: 100})], [R1, R2], 0), undefined)
  })
})

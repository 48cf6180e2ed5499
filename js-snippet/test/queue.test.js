import assert from 'node:assert/strict'
import { test } from 'node:test'
import { BATCH, FLUSH_MS, MAX_QUEUE, createQueue } from '../src/queue.js'

// A controllable world: timers run when the test says, the endpoint answers what it is told.
function world ({ statuses = [], allowed = () => true } = {}) {
  const timers = []
  const posts = []
  const beacons = []
  const store = new Map()
  const storage = {
    getItem: (k) => (store.has(k) ? store.get(k) : null),
    setItem: (k, v) => store.set(k, String(v)),
    removeItem: (k) => store.delete(k)
  }
  const queue = createQueue({
    send: async (body) => {
      posts.push(JSON.parse(body).events)
      const status = statuses.length ? statuses.shift() : 200
      if (status === 'network') throw new TypeError('Failed to fetch')
      return status
    },
    beacon: (body) => { beacons.push(JSON.parse(body).events); return true },
    storage,
    allowed,
    timer: (fn, ms) => timers.push({ fn, ms })
  })
  const runTimers = async () => {
    const due = timers.splice(0)
    for (const t of due) await t.fn()
  }
  const stored = () => JSON.parse(storage.getItem('recs_q') || '[]')
  return { queue, timers, posts, beacons, storage, stored, runTimers }
}

const ev = (i) => ({ event_id: `e-${i}`, type: 'view', item_id: `sku-${i}` })

test('a single event is sent by the flush timer, within 2 s', async () => {
  const w = world()
  w.queue.push(ev(1))
  assert.equal(w.posts.length, 0)
  assert.deepEqual(w.timers.map((t) => t.ms), [FLUSH_MS])
  await w.runTimers()
  assert.deepEqual(w.posts, [[ev(1)]])
  assert.equal(w.queue.size, 0)
  assert.deepEqual(w.stored(), [])
})

test(`${BATCH} events are sent at once, in one batch`, async () => {
  const w = world()
  for (let i = 0; i < BATCH; i++) w.queue.push(ev(i))
  await new Promise(setImmediate)
  assert.equal(w.posts.length, 1)
  assert.equal(w.posts[0].length, BATCH)
})

test('network errors and 5xx are retried with growing backoff, then delivered', async () => {
  const w = world({ statuses: ['network', 503, 500, 200] })
  w.queue.push(ev(1))
  const delays = []
  for (let i = 0; i < 4; i++) {
    delays.push(w.timers[0].ms)
    await w.runTimers()
  }
  assert.deepEqual(delays, [FLUSH_MS, 2000, 4000, 8000])
  assert.equal(w.posts.length, 4)
  assert.deepEqual(w.posts[3], [ev(1)])
  assert.equal(w.queue.size, 0)
  assert.equal(w.timers.length, 0)
})

test('events wait in storage while the endpoint fails, and a new page sends them', async () => {
  const w = world({ statuses: [503] })
  w.queue.push(ev(1))
  await w.runTimers()
  assert.deepEqual(w.stored(), [ev(1)])
  w.timers.length = 0 // the first page is gone
  const next = createQueue({
    send: async (body) => { w.posts.push(JSON.parse(body).events); return 200 },
    storage: w.storage,
    timer: (fn, ms) => w.timers.push({ fn, ms })
  })
  next.push(ev(2))
  await w.runTimers()
  assert.deepEqual(w.posts.at(-1), [ev(1), ev(2)])
  assert.deepEqual(w.stored(), [])
})

test('4xx answers are dropped, not retried', async () => {
  const w = world({ statuses: [400] })
  w.queue.push(ev(1))
  await w.runTimers()
  assert.equal(w.posts.length, 1)
  assert.equal(w.queue.size, 0)
  assert.equal(w.timers.length, 0)
  assert.deepEqual(w.stored(), [])
})

test('429 is retried like a server error', async () => {
  const w = world({ statuses: [429] })
  w.queue.push(ev(1))
  await w.runTimers()
  assert.equal(w.queue.size, 1)
  assert.equal(w.timers.length, 1)
})

test(`the queue keeps at most ${MAX_QUEUE} events, dropping the oldest`, async () => {
  const w = world({ statuses: Array(200).fill('network') })
  for (let i = 0; i < MAX_QUEUE + 20; i++) w.queue.push(ev(i))
  await new Promise(setImmediate)
  assert.equal(w.queue.size, MAX_QUEUE)
  const stored = w.stored()
  assert.equal(stored.length, MAX_QUEUE)
  assert.equal(stored[0].event_id, 'e-20')
  assert.equal(stored.at(-1).event_id, `e-${MAX_QUEUE + 19}`)
})

test('while not allowed (no consent) nothing is sent and nothing is stored', async () => {
  let ok = false
  const w = world({ allowed: () => ok })
  w.queue.push(ev(1))
  await w.runTimers()
  w.queue.beacon()
  assert.equal(w.posts.length + w.beacons.length, 0)
  assert.equal(w.storage.getItem('recs_q'), null)
  ok = true
  w.queue.restore()
  await w.queue.flush()
  assert.deepEqual(w.posts, [[ev(1)]])
})

test('clear() forgets queued and stored events', async () => {
  const w = world({ statuses: [503] })
  w.queue.push(ev(1))
  await w.runTimers()
  w.queue.clear()
  assert.equal(w.queue.size, 0)
  assert.equal(w.storage.getItem('recs_q'), null)
})

test('beacon hands waiting events over and forgets them when the endpoint is healthy', () => {
  const w = world()
  w.queue.push(ev(1))
  w.queue.beacon()
  assert.deepEqual(w.beacons, [[ev(1)]])
  assert.equal(w.queue.size, 0)
})

test('beacon keeps events stored while the endpoint is failing', async () => {
  const w = world({ statuses: [503] })
  w.queue.push(ev(1))
  await w.runTimers()
  w.queue.beacon()
  assert.deepEqual(w.beacons, [[ev(1)]])
  assert.deepEqual(w.stored(), [ev(1)])
})

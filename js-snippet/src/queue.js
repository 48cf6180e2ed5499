// The event queue: batches events, sends them, retries failures with backoff and keeps
// unsent events in a bounded store (localStorage) so that a reload or a new page sends them.
// Everything it touches is passed in, so node's test runner can drive it.

export const BATCH = 10 // send at once when this many events wait...
export const FLUSH_MS = 2000 // ...or after this long
export const MAX_QUEUE = 100 // most events kept; the oldest go first
export const MAX_POST = 50 // most events in one request
export const MAX_BACKOFF_MS = 30000
const KEY = 'recs_q'

export function createQueue ({ send, beacon, storage, allowed = () => true, timer = setTimeout }) {
  let q = []
  let inflight = false
  let failures = 0
  let pending = null

  const save = () => {
    if (!storage || !allowed()) return
    try {
      q.length ? storage.setItem(KEY, JSON.stringify(q)) : storage.removeItem(KEY)
    } catch (e) {} // storage full or refused: events stay in memory
  }

  const schedule = (ms) => {
    if (!pending) pending = timer(() => { pending = null; flush() }, ms)
  }

  const drop = (batch) => {
    q = q.filter((e) => !batch.includes(e))
    save()
  }

  async function flush () {
    if (inflight || !q.length || !allowed()) return
    const batch = q.slice(0, MAX_POST)
    inflight = true
    let status = 0
    try {
      status = await send(JSON.stringify({ events: batch }))
    } catch (e) {} // network error: status stays 0
    inflight = false
    if (status >= 200 && status < 500 && status !== 429) {
      failures = 0 // stored, duplicate or refused for good (4xx): never send these again
      drop(batch)
      if (q.length) schedule(0)
    } else {
      failures++
      schedule(Math.min(1000 * 2 ** failures, MAX_BACKOFF_MS))
    }
  }

  const queue = {
    push (event) {
      q.push(event)
      if (q.length > MAX_QUEUE) q.splice(0, q.length - MAX_QUEUE)
      save()
      q.length >= BATCH && !failures ? flush() : schedule(FLUSH_MS)
    },
    flush,
    // The page is going away (or hidden): hand what waits to sendBeacon. While the endpoint
    // fails the events also stay stored, for the next page to retry (the server drops repeats).
    beacon () {
      if (!q.length || !allowed() || !beacon) return
      const batch = q.slice(0, MAX_POST)
      if (beacon(JSON.stringify({ events: batch })) && !failures) drop(batch)
    },
    // Take over events a previous page left unsent (at start, and once consent is given).
    restore () {
      if (!storage || !allowed()) return
      let stored = []
      try { stored = JSON.parse(storage.getItem(KEY)) || [] } catch (e) {}
      const ids = new Set(q.map((e) => e.event_id))
      q = stored.filter((e) => !ids.has(e.event_id)).concat(q).slice(-MAX_QUEUE)
      save()
      if (q.length) schedule(FLUSH_MS)
    },
    // Forget everything (consent withdrawn).
    clear () {
      q = []
      try { storage && storage.removeItem(KEY) } catch (e) {}
    },
    get size () { return q.length }
  }
  queue.restore()
  return queue
}

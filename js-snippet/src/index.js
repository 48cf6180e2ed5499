// storefront-recs snippet: tracks page views, product views, carts, impressions and clicks,
// and renders recommendation widgets. Loaded async after a queue stub:
//   window.recs = window.recs || function () { (recs.q = recs.q || []).push(arguments) }
// Commands:
//   recs('track', type, {item_id | items, quantity, value, context})   e.g. 'add_to_cart'
//   recs('consent', true | false)   give or withdraw consent (the server sets the cookies)
//   recs('widgets')                 render widgets added to the page since (single-page apps)
//   recs('flush')                   send what waits now
import { createQueue } from './queue.js'
import { productId, uuid } from './page.js'
import { itemTemplate, render } from './widgets.js'

(() => {
  const w = window
  const d = document
  const nav = navigator
  if (w.recs && w.recs.loaded) return // included twice: the first copy does the work
  const script = d.currentScript || d.querySelector('script[data-recs-api]')
  const opt = (name) => script && script.getAttribute('data-recs-' + name)
  const api = opt('api') || '/recs/api/v1'
  const cookie = opt('cookie') || 'recs_consent'
  const readConsent = () => (d.cookie.split('; ').find((c) => c.startsWith(cookie + '=')) || '').slice(cookie.length + 1)
  let consent = readConsent() // '1' given, '0' refused, '' not asked
  // Do-Not-Track / Global Privacy Control: nothing is sent or stored at all.
  const refused = opt('dnt') != null && (nav.doNotTrack === '1' || w.doNotTrack === '1' || nav.globalPrivacyControl === true)
  const allowed = () => !refused && (consent === '1' || (consent !== '0' && opt('consent') == null))
  let storage
  try { storage = w.localStorage } catch (e) {}

  const post = (path, body, type) => fetch(api + path, {
    method: 'POST', body, keepalive: true, credentials: 'same-origin', headers: { 'Content-Type': type }
  }).then((r) => {
    // Refused for good (a 4xx other than 429): the queue drops the batch, since sending it again
    // cannot help, but says why where the shop's developer looks (e.g. an origin the server refuses).
    if (r.status > 399 && r.status < 500 && r.status !== 429) {
      r.clone().text().then((t) => console.warn('storefront-recs: ' + path + ' refused, HTTP ' + r.status + ': ' + t), () => {})
    }
    return r
  })
  const queue = createQueue({
    send: (body) => post('/events', body, 'text/plain').then((r) => r.status),
    beacon: (body) => nav.sendBeacon && nav.sendBeacon(api + '/events', body),
    storage,
    allowed
  })
  if (refused || consent === '0') queue.clear() // events stored before the visitor said no

  // props: item_id or items, quantity, value, context (page, referrer, widget, slot, token, ...)
  function track (type, props) {
    if (refused || consent === '0') return
    props = props || {}
    const context = { page: location.href, ...props.context }
    if (d.referrer) context.referrer = d.referrer
    queue.push({ ...props, event_id: uuid(), type, ts: Date.now(), context })
  }

  function setConsent (given) {
    if (!given) {
      consent = '0'
      queue.clear()
    }
    // The server sets the consent cookie and, on refusal, clears its HttpOnly anonymous id.
    return post('/consent', JSON.stringify({ consent: !!given }), 'application/json').then((r) => {
      if (given && r.ok) {
        consent = '1'
        queue.restore()
        queue.flush()
      }
    }, () => {})
  }

  // A widget item's event: its item, widget, position, recommendation token and A/B variant.
  const itemEvent = (el, type) => {
    const widget = el.closest('[data-recs-widget]')
    const context = {}
    const token = el.getAttribute('data-recs-token')
    const position = el.getAttribute('data-recs-position')
    const variant = el.getAttribute('data-recs-variant')
    if (widget) context.widget = widget.getAttribute('data-recs-widget')
    if (widget && widget.id) context.slot = widget.id
    if (token) context.token = token
    if (variant) context.variant = variant
    if (position) context.position = +position
    track(type, { item_id: el.getAttribute('data-recs-item'), context })
  }

  // An impression is an item at least half visible, once per item element.
  const seen = new WeakSet()
  const observer = w.IntersectionObserver && new IntersectionObserver((entries) => entries.forEach((e) => {
    if (e.intersectionRatio >= 0.5) {
      observer.unobserve(e.target)
      itemEvent(e.target, 'impression')
    }
  }), { threshold: 0.5 })
  const observe = (root) => root.querySelectorAll('[data-recs-item]').forEach((el) => {
    if (!seen.has(el) && observer) {
      seen.add(el)
      observer.observe(el)
    }
  })

  let viewed
  // Fill every widget not yet done; widgets rendered by the server only need observing.
  function widgets () {
    d.querySelectorAll('[data-recs-widget]').forEach((el) => {
      if (seen.has(el)) return
      seen.add(el)
      if (el.querySelector('[data-recs-item]')) return observe(el)
      const kind = el.getAttribute('data-recs-widget')
      const item = el.getAttribute('data-item-id') || (/^(similar|bought-together)$/.test(kind) && viewed)
      let query = '?n=' + (el.getAttribute('data-limit') || 4)
      for (const name of ['category', 'exclude', 'min-price', 'max-price']) { // the API's filters
        const value = el.getAttribute('data-' + name)
        if (value) query += '&' + name.replace('-', '_') + '=' + encodeURIComponent(value)
      }
      el.setAttribute('aria-busy', 'true')
      fetch(api + '/' + kind + (item ? '/' + encodeURIComponent(item) : '') + query, { credentials: 'same-origin' })
        .then((r) => r.ok ? r.json() : {}).catch(() => ({}))
        .then((data) => { render(el, data, itemTemplate(d, el)); observe(el) })
    })
  }

  const commands = { track, consent: setConsent, flush: queue.flush, widgets }
  const early = (w.recs && w.recs.q) || [] // calls made before the script loaded
  const recs = w.recs = (name, ...args) => commands[name] && commands[name](...args)
  recs.loaded = true

  function start () {
    viewed = productId(d)
    early.forEach((args) => recs(...args))
    track('page_view')
    if (viewed) track('view', { item_id: viewed })
    widgets()
  }
  d.readyState === 'loading' ? d.addEventListener('DOMContentLoaded', start) : start()
  const onClick = (e) => {
    const el = e.target.closest && e.target.closest('[data-recs-item]')
    if (el && e.button < 2) { // not the right button
      itemEvent(el, 'click')
      queue.flush() // a keepalive fetch outlives the navigation that follows
    }
  }
  d.addEventListener('click', onClick, true)
  d.addEventListener('auxclick', onClick, true) // middle click: opened in a new tab
  w.addEventListener('pagehide', queue.beacon)
  d.addEventListener('visibilitychange', () => d.visibilityState === 'hidden' && queue.beacon())
})()

// Widgets rendered from the JSON API through a <template>. Catalogue text is only ever set as
// text (textContent, alt); links and images only take http(s) or relative URLs.

const DEFAULT_ITEM = '<li class="recs-item"><a class="recs-link" data-recs-link>' +
  '<img class="recs-image" data-recs-image loading="lazy" decoding="async" alt="">' +
  '<span class="recs-title" data-recs-title></span> <span class="recs-price" data-recs-price></span></a></li>'

let fallback
// The shop's <template> (data-recs-template="id" on the widget, else #recs-item), else ours.
export function itemTemplate (doc, el) {
  const own = doc.getElementById(el.getAttribute('data-recs-template') || 'recs-item')
  if (own && own.content) return own
  if (!fallback) {
    fallback = doc.createElement('template')
    fallback.innerHTML = DEFAULT_ITEM // a constant: no catalogue data in it
  }
  return fallback
}

const safeUrl = (url) => {
  if (!url) return
  try {
    const u = new URL(url, location.href)
    if (u.protocol === 'https:' || u.protocol === 'http:') return u.href
  } catch (e) {}
}

const fill = (root, selector, fn) => root.querySelectorAll(selector).forEach(fn)

// Put the answer's items into the widget element (after any heading the shop wrote in it).
// With no items the whole element is hidden, heading and all, quietly. data-recs-state tells
// CSS and tests how it went: "ready" or "empty".
export function render (el, data, template) {
  const items = (data && data.items) || []
  const list = el.querySelector('[data-recs-list]') || el.appendChild(el.ownerDocument.createElement('ul'))
  if (!list.hasAttribute('data-recs-list')) {
    list.className = 'recs-list'
    list.setAttribute('role', 'list')
    list.setAttribute('data-recs-list', '')
  }
  list.replaceChildren(...items.map((item, i) => {
    const node = template.content.firstElementChild.cloneNode(true)
    const token = item.token || data.token
    node.setAttribute('data-recs-item', item.id)
    node.setAttribute('data-recs-position', i)
    if (token) node.setAttribute('data-recs-token', token)
    if (data.variant) node.setAttribute('data-recs-variant', data.variant) // an A/B test's arm
    const title = item.title == null ? String(item.id) : String(item.title)
    fill(node, '[data-recs-title]', (n) => { n.textContent = title })
    fill(node, '[data-recs-price]', (n) => { n.textContent = item.price == null ? '' : Number(item.price).toFixed(2) })
    fill(node, '[data-recs-link]', (n) => {
      const href = safeUrl(item.url)
      href ? n.setAttribute('href', href) : n.removeAttribute('href')
    })
    fill(node, '[data-recs-image]', (n) => {
      const src = safeUrl(item.image_url)
      if (!src) return n.remove()
      n.setAttribute('src', src)
      n.setAttribute('alt', title)
    })
    return node
  }))
  el.hidden = !items.length
  el.setAttribute('data-recs-state', items.length ? 'ready' : 'empty')
  el.removeAttribute('aria-busy')
}

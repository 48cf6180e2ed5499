// What the page tells us: the viewed product, and fresh event ids.

const isProduct = (type) => [].concat(type).some((t) => /(^|[/:])Product$/.test(t))

// The sku (else productID) of the first schema.org Product in a parsed JSON-LD value.
export function productFromLd (node) {
  if (!node || typeof node !== 'object') return
  if (Array.isArray(node)) {
    for (const n of node) {
      const id = productFromLd(n)
      if (id) return id
    }
    return
  }
  const id = isProduct(node['@type']) && (node.sku || node.productID)
  return id ? String(id) : productFromLd(node['@graph'])
}

// The product this page shows: a data-recs-item-id attribute, else JSON-LD.
export function productId (doc) {
  const el = doc.querySelector('[data-recs-item-id]')
  if (el) return el.getAttribute('data-recs-item-id')
  for (const s of doc.querySelectorAll('script[type="application/ld+json"]')) {
    try {
      const id = productFromLd(JSON.parse(s.textContent))
      if (id) return id
    } catch (e) {} // a shop's broken JSON-LD is not our error
  }
}

// A random (version 4) UUID; crypto.randomUUID needs a secure context, getRandomValues does not.
export const uuid = () => '10000000-1000-4000-8000-100000000000'.replace(/[018]/g,
  (c) => (c ^ (crypto.getRandomValues(new Uint8Array(1))[0] & (15 >> (c / 4)))).toString(16))

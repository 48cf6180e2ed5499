import assert from 'node:assert/strict'
import { test } from 'node:test'
import { productFromLd, productId, uuid } from '../src/page.js'

test('finds the sku of a schema.org Product', () => {
  assert.equal(productFromLd({ '@context': 'https://schema.org', '@type': 'Product', sku: 'sku-1', productID: 'p1' }), 'sku-1')
  assert.equal(productFromLd({ '@type': 'Product', productID: 42 }), '42')
  assert.equal(productFromLd({ '@type': ['Thing', 'Product'], sku: 'x' }), 'x')
  assert.equal(productFromLd({ '@type': 'https://schema.org/Product', sku: 'y' }), 'y')
})

test('looks into arrays and @graph, skipping other types', () => {
  const ld = [
    { '@type': 'BreadcrumbList', sku: 'no' },
    { '@graph': [{ '@type': 'Organization' }, { '@type': 'Product', sku: 'sku-9' }] }
  ]
  assert.equal(productFromLd(ld), 'sku-9')
  assert.equal(productFromLd({ '@type': 'ProductGroup', sku: 'no' }), undefined)
  assert.equal(productFromLd({ '@type': 'Product' }), undefined)
  assert.equal(productFromLd(null), undefined)
})

test('a data-recs-item-id attribute wins over JSON-LD, and broken JSON-LD is skipped', () => {
  const doc = (attr, scripts) => ({
    querySelector: () => (attr ? { getAttribute: () => attr } : null),
    querySelectorAll: () => scripts.map((textContent) => ({ textContent }))
  })
  assert.equal(productId(doc('a-1', ['{"@type":"Product","sku":"b"}'])), 'a-1')
  assert.equal(productId(doc(null, ['{broken', '{"@type":"Product","sku":"b"}'])), 'b')
  assert.equal(productId(doc(null, [])), undefined)
})

test('uuid() makes distinct version 4 UUIDs', () => {
  const ids = new Set(Array.from({ length: 1000 }, uuid))
  assert.equal(ids.size, 1000)
  for (const id of ids) assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
})

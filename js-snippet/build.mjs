// Build src/ into storefront_recs/static/storefront_recs/recs.min.js and report its size.
//   node build.mjs          write the file
//   node build.mjs --check  fail if the committed file differs from a fresh build
// Both fail when the gzipped size is over the budget.
import { build } from 'esbuild'
import { readFileSync, writeFileSync } from 'node:fs'
import { gzipSync } from 'node:zlib'

const OUT = new URL('../storefront_recs/static/storefront_recs/recs.min.js', import.meta.url)
const BUDGET = 4096 // bytes, gzipped

const result = await build({
  entryPoints: [new URL('src/index.js', import.meta.url).pathname],
  bundle: true,
  minify: true,
  format: 'iife',
  target: 'es2019',
  legalComments: 'none',
  write: false
})
const code = Buffer.from(result.outputFiles[0].contents)
const gzipped = gzipSync(code, { level: 9 }).length
console.log(`recs.min.js: ${code.length} bytes, ${gzipped} bytes gzipped (budget ${BUDGET})`)
if (gzipped > BUDGET) {
  console.error(`recs.min.js is ${gzipped - BUDGET} bytes over its gzipped budget`)
  process.exit(1)
}
if (process.argv.includes('--check')) {
  let committed = null
  try { committed = readFileSync(OUT) } catch (e) {}
  if (!committed || !committed.equals(code)) {
    console.error('the committed recs.min.js differs from its source: run `npm run build` in js-snippet/ and commit it')
    process.exit(1)
  }
  console.log('committed recs.min.js matches its source')
} else {
  writeFileSync(OUT, code)
}

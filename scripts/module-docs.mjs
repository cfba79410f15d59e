// Regenerates the README's module reference from the comment each module file opens
// with (parameters + example), so the two never drift apart. `node scripts/module-docs.mjs`
import {readFileSync, readdirSync, writeFileSync} from 'node:fs'

const dir = 'src/modules'
const skip = new Set(['types.ts', 'index.ts', 'core.ts', 'remote.ts', 'redis-host.ts'])
const sections = []
for (const f of readdirSync(dir).filter((f) => f.endsWith('.ts') && !skip.has(f)).sort()) {
  const lines = readFileSync(`${dir}/${f}`, 'utf8').split('\n')
  const head = []
  for (const l of lines) {
    if (!l.startsWith('//')) break
    head.push(l.replace(/^\/\/ ?/, ''))
  }
  if (head.length) sections.push(`### ${f.replace(/\.ts$/, '')}\n\n\`\`\`text\n${head.join('\n')}\n\`\`\``)
}
const readme = readFileSync('README.md', 'utf8')
const start = '<!-- modules:start -->'
const end = '<!-- modules:end -->'
const a = readme.indexOf(start)
const b = readme.indexOf(end)
if (a < 0 || b < 0) throw new Error('README.md lacks the module reference markers')
writeFileSync('README.md', readme.slice(0, a + start.length) + '\n' + sections.join('\n\n') + '\n' + readme.slice(b))
console.log(`README.md: ${sections.length} modules documented`)

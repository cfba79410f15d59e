// Regenerates the README's module reference from the comment each module file opens
// with (parameters + example), so the two never drift apart. `node scripts/module-docs.mjs`
import {readFileSync, readdirSync, writeFileSync} from 'node:fs'

const dir = 'src/modules'
// A module's documentation is the comment that opens its file, or a comment right above
// its `export const …Module` (command.ts holds command and shell); its first line names it.
function docBlocks(text) {
  const lines = text.split('\n')
  const blocks = []
  let block = []
  lines.forEach((l, n) => {
    if (l.startsWith('//')) return block.push(l.replace(/^\/\/ ?/, ''))
    const opening = block.length === n
    if (block.length && (opening || /^export const \w+Module\b/.test(l)) && /^\w+: /.test(block[0])) blocks.push(block)
    block = []
  })
  return blocks
}
const sections = []
for (const f of readdirSync(dir, {recursive: true}).filter((f) => f.endsWith('.ts'))) {
  for (const head of docBlocks(readFileSync(`${dir}/${f}`, 'utf8'))) sections.push({name: head[0].split(':')[0], text: head.join('\n')})
}
sections.sort((a, b) => (a.name < b.name ? -1 : 1))
const rendered = sections.map((s) => `### ${s.name}\n\n\`\`\`text\n${s.text}\n\`\`\``)
const readme = readFileSync('README.md', 'utf8')
const start = '<!-- modules:start -->'
const end = '<!-- modules:end -->'
const a = readme.indexOf(start)
const b = readme.indexOf(end)
if (a < 0 || b < 0) throw new Error('README.md lacks the module reference markers')
writeFileSync('README.md', readme.slice(0, a + start.length) + '\n' + rendered.join('\n\n') + '\n' + readme.slice(b))
console.log(`README.md: ${sections.length} modules documented`)

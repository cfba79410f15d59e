import type {Inventory} from '../inventory/inventory.js'
import {selectHosts} from '../inventory/inventory.js'
import type {Playbook} from '../play/playbook.js'
import {tagSelected} from '../play/runner.js'

// ansible-playbook --list-hosts / --list-tasks / --syntax-check: what a run would do,
// from the inventory and playbook alone. Pure: no host is connected.

export interface PlaybookListing {
  playbook: string
  plays: Array<{name: string; pattern: string; hosts: string[]; tasks: Array<{name: string; tags: string[]}>}>
}

export function listPlaybook(inv: Inventory, book: Playbook, o: {limit?: string; tags?: string[]; skipTags?: string[]}): PlaybookListing {
  const limited = o.limit ? new Set(selectHosts(inv, o.limit).map((h) => h.name)) : undefined
  return {
    playbook: book.file,
    plays: book.plays.map((p) => ({
      name: p.name,
      pattern: p.hosts,
      hosts: selectHosts(inv, p.hosts, p.where)
        .map((h) => h.name)
        .filter((h) => !limited || limited.has(h)),
      tasks: p.tasks.filter((t) => tagSelected(t, o.tags, o.skipTags)).map((t) => ({name: t.name, tags: t.tags})),
    })),
  }
}

/** The listing as ansible-playbook prints it. */
export function renderListing(l: PlaybookListing, show: {hosts: boolean; tasks: boolean}): string {
  const out = ['', `playbook: ${l.playbook}`]
  l.plays.forEach((p, i) => {
    out.push('', `  play #${i + 1} (${p.pattern}): ${p.name}`)
    if (show.hosts) out.push(`    pattern: ['${p.pattern}']`, `    hosts (${p.hosts.length}):`, ...p.hosts.map((h) => `      ${h}`))
    if (show.tasks) out.push('    tasks:', ...p.tasks.map((t) => `      ${t.name}\tTAGS: [${t.tags.join(', ')}]`))
  })
  return out.join('\n')
}

// Ansible's host pattern rules (inventory/manager.py: split_host_pattern, order_patterns):
// terms are joined by ":" or ","; the plain ones are a union, then every "&term" narrows
// it and every "!term" removes from it, whatever order they were written in. A pattern
// of only "&"/"!" terms starts from "all", so `--limit '!h2'` means every host but h2.

/** A pattern, or several that must all match (a command's group and its --limit). */
export type HostPattern = string | string[]

export interface PatternTerm {
  op: 'union' | 'and' | 'not'
  name: string
}

/** The terms of one pattern in the order Ansible applies them. */
export function orderedTerms(pattern: string): PatternTerm[] {
  const raw = pattern.split(/[:,]/).map((t) => t.trim()).filter(Boolean)
  const terms = raw.map((t): PatternTerm => (t.startsWith('!') ? {op: 'not', name: t.slice(1)} : t.startsWith('&') ? {op: 'and', name: t.slice(1)} : {op: 'union', name: t}))
  const union = terms.filter((t) => t.op === 'union')
  if (terms.length > 0 && union.length === 0) union.push({op: 'union', name: 'all'})
  return [...union, ...terms.filter((t) => t.op === 'and'), ...terms.filter((t) => t.op === 'not')]
}

/** Which of the hosts a pattern selects, given how one term matches. */
export function applyTerms(terms: PatternTerm[], match: (name: string) => Set<string>): Set<string> {
  let selected = new Set<string>()
  for (const t of terms) {
    const hit = match(t.name)
    if (t.op === 'union') for (const h of hit) selected.add(h)
    else if (t.op === 'and') selected = new Set([...selected].filter((h) => hit.has(h)))
    else for (const h of hit) selected.delete(h)
  }
  return selected
}

/** The hosts of a command's group narrowed by its --limit (Ansible's inventory.subset). */
export function withLimit(group: string, limit?: string): HostPattern {
  return limit ? [group, limit] : group
}

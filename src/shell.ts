// Every value that reaches a remote shell goes through quote(): variables are data,
// never code, whatever they contain ($(), backticks, quotes, newlines).

/** POSIX single-quote a string: safe for any byte sequence except NUL. */
export function quote(value: string | number): string {
  const s = String(value)
  if (s.includes('\0')) throw new Error('a shell argument cannot contain a NUL byte')
  if (/^[A-Za-z0-9_./:=@%+-]+$/.test(s)) return s
  return `'${s.replace(/'/g, `'\\''`)}'`
}

/** Join already-separate arguments into one command line, each quoted. */
export function argv(...args: Array<string | number>): string {
  return args.map(quote).join(' ')
}

/** `~` and `~/x` name the remote user's home; the transport knows it after connect. */
export function expandHome(path: string, home: string): string {
  if (path === '~') return home
  if (path.startsWith('~/')) return `${home}/${path.slice(2)}`
  return path
}

/**
 * Replace every occurrence of each secret with ******** so passwords never reach a log,
 * recap, JSON document or error message, even inside a command's own stderr.
 */
export function mask(text: string, secrets: Iterable<string>): string {
  let out = text
  for (const s of secrets) {
    if (!s || s.length < 1) continue
    out = out.split(s).join('********')
  }
  return out
}

import {quote} from '../shell.js'
import type {UploadFile} from './types.js'

/**
 * One shell script that writes many files: each payload base64-encoded in a quoted
 * heredoc (so no byte of it is ever interpreted), written to a temp file beside its
 * destination, chmod-ed, then renamed over it. A dropped connection leaves at most a
 * stray temp file, never a half-written config.
 */
export function buildUploadScript(files: UploadFile[]): string {
  const lines = ['set -e', 'umask 077']
  files.forEach((f, i) => {
    const dest = quote(f.path)
    const tmp = quote(`${f.path}.baremetal-tmp`)
    const mode = (f.mode ?? 0o644).toString(8)
    const b64 = Buffer.from(f.content).toString('base64').replace(/(.{76})/g, '$1\n')
    lines.push(
      `base64 -d > ${tmp} <<'__BAREMETAL_EOF_${i}__'`,
      b64,
      `__BAREMETAL_EOF_${i}__`,
      `chmod ${mode} ${tmp}`,
      `mv -f ${tmp} ${dest}`,
    )
  })
  return lines.join('\n') + '\n'
}

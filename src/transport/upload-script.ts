import {quote} from '../shell.js'
import type {UploadFile} from './types.js'

/**
 * One shell script that writes many files: each payload base64-encoded in a quoted
 * heredoc (so no byte of it is ever interpreted), written to a temp file beside its
 * destination, chmod-ed, then renamed over it. Each file's commands are one `{ … }`
 * group, which sh parses whole before running any of it: a connection dropped
 * mid-script ends stdin inside a group, so that group is a syntax error and never runs
 * (without the braces sh would run a half-received line such as `mv -f tmp /roo`).
 * A drop leaves at most a stray temp file, never a half-written destination. The temp
 * name is removed first so a symlink planted there is replaced, not written through,
 * and `mv` renames over a symlink at the destination instead of following it.
 */
/** Printed after the last file: an upload without it did not finish. */
export const UPLOAD_DONE = '__BAREMETAL_UPLOAD_DONE__'

export function buildUploadScript(files: UploadFile[]): string {
  const lines = ['set -e', 'umask 077']
  files.forEach((f, i) => {
    const dest = quote(f.path)
    const tmp = quote(`${f.path}.baremetal-tmp`)
    const mode = (f.mode ?? 0o644).toString(8)
    const b64 = Buffer.from(f.content)
      .toString('base64')
      .replace(/(.{76})/g, '$1\n')
    lines.push('{', `rm -f -- ${tmp}`, `base64 -d > ${tmp} <<'__BAREMETAL_EOF_${i}__'`, b64, `__BAREMETAL_EOF_${i}__`, `chmod ${mode} ${tmp}`, `mv -f -- ${tmp} ${dest}`, '}')
  })
  lines.push(`echo ${UPLOAD_DONE}`)
  return lines.join('\n') + '\n'
}

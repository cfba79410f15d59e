import {dirname, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'

// Where the package's own files are (bundled playbooks, templates, inventory), from dist/src/cli.
export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')
export const bundled = (...p: string[]) => resolve(PACKAGE_ROOT, ...p)

import {Command, Errors, Flags} from '@oclif/core'
import {InputError} from '../errors.js'
import {countVerbose} from './flags.js'
import {reportError} from './common.js'

// Every command on one base, as oclif means it (core src/command.ts): `--json` through
// enableJsonFlag, run() returning the command's typed result (oclif prints it as the
// JSON document), and one error path: catch() hands every error to reportError, so the
// exit code is the error's own (bad input, unknown flags included, is 5).

/** What a command did: its result (the --json document), its exit code, and the text a person reads. */
export interface Outcome<R> {
  result: R
  exitCode: number
  /** Printed instead of the JSON document without --json. */
  text?: string
}

export abstract class BaseCommand<R extends object> extends Command {
  static override enableJsonFlag = true
  static override baseFlags = {
    json: Flags.boolean({description: 'print one JSON document instead of progress and text', default: false, helpGroup: 'GLOBAL'}),
  }

  /** The command's work: throws for anything that is not a result (bad input, a lost connection). */
  protected abstract work(): Promise<Outcome<R>>

  override async init(): Promise<void> {
    this.argv = countVerbose(this.argv)
    await super.init()
  }

  async run(): Promise<R> {
    const o = await this.work()
    process.exitCode = o.exitCode
    if (!this.jsonEnabled() && o.text !== undefined) process.stdout.write(o.text + '\n')
    return o.result
  }

  // The JSON document exactly as before the base class: two-space indent, no colours.
  override logJson(json: unknown): void {
    process.stdout.write(JSON.stringify(json, null, 2) + '\n')
  }

  override async catch(error: Error & {exitCode?: number}): Promise<void> {
    // Before parse() succeeded, any oclif error is about the command line itself.
    process.exitCode = reportError(this.parsed ? error : asInputError(this.id, error), this.jsonEnabled())
  }
}

// oclif's own parse errors (unknown flag, missing argument, bad value) are bad input: exit 5.
function asInputError(id: string | undefined, error: Error): Error {
  if (!(error instanceof Errors.CLIError)) return error
  const lines = error.message
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !/^See more help with --help$/.test(l) && !/^(Note|Alternatively)[:,]/.test(l))
  return new InputError(lines.join('; '), {hint: `baremetal ${id ?? ''} --help lists the flags and arguments`.replace('  ', ' ')})
}

// Values the expression language passes around besides plain JSON-like data.

/** An error inside an expression or template, at an offset of its source. */
export class ExprError extends Error {
  constructor(
    message: string,
    readonly pos: number,
    readonly hint?: string,
  ) {
    super(message)
  }
}

/**
 * A Python float: `4 / 2` is 2.0 in Jinja and prints so; JS numbers cannot tell 2 from 2.0.
 * Only results of `/`, `| float` and literals with a dot are Floats.
 */
export class Float {
  constructor(readonly v: number) {}
}

/** A name or key that does not exist; only `is defined`, `default` and friends may look at it. */
export class Undef {
  constructor(
    readonly name: string,
    readonly pos: number,
    readonly why?: string,
  ) {}
}

export const isUndef = (v: unknown): v is Undef => v instanceof Undef

/** Use a value: an undefined one is an error naming it, as in Ansible. */
export function use<T>(v: T, pos: number): Exclude<T, Undef> {
  if (v instanceof Undef) {
    throw new ExprError(v.why ? `"${v.name}": ${v.why}` : `undefined variable "${v.name}"`, v.pos, undefinedHint(v.name))
  }
  return v as Exclude<T, Undef>
}

export function undefinedHint(name: string): string {
  const root = /^[A-Za-z_]\w*/.exec(name)?.[0] ?? name
  return `define "${root}" in the inventory (host or group vars), the play's vars, or with -e ${root}=VALUE; or write {{ ${name} | default('fallback') }}, or test it with "${name} is defined"`
}

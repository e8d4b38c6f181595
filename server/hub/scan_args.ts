/**
 * A strict command-line scanner: `--name value`, `--name=value`, `-n value`,
 * boolean flags, repeatable flags, `--` before positionals. Every mistake is
 * a {@linkcode FlagError} whose message is one line naming the flag. It has
 * the shape of `node:util` `parseArgs` in strict mode, without the Node
 * compatibility layer that loading `node:util` starts (several megabytes in
 * an idle hub).
 *
 * @module
 */

/** A bad command line; the message names the flag and is one line. */
export class FlagError extends Error {
  /**
   * Creates the error.
   *
   * @param message What was wrong, naming the flag.
   */
  constructor(message: string) {
    super(message);
    this.name = "FlagError";
  }
}

/** How one flag is read. */
export interface ScanOption {
  /** `"string"` takes a value, `"boolean"` none. */
  readonly type: "string" | "boolean";
  /** One-letter alias, e.g. `h` for `-h`. */
  readonly short?: string;
  /** Repeatable: the values are collected into an array. */
  readonly multiple?: boolean;
}

/** What {@linkcode scanArgs} found. */
export interface ScannedArgs {
  /** Each flag given: a string, `true`, or an array for repeatable flags. */
  readonly values: Record<string, string | boolean | (string | boolean)[]>;
  /** The arguments that are not flags. */
  readonly positionals: string[];
}

/**
 * Scans a command line.
 *
 * @param args The arguments, without the program.
 * @param options The flags, by long name.
 * @param allowPositionals Whether non-flag arguments are allowed.
 * @returns The values given and the positionals.
 * @throws {FlagError} For an unknown flag, a missing value, a value given to
 * a boolean flag, or a positional that is not allowed.
 * @example
 * ```ts
 * import { scanArgs } from "./scan_args.ts";
 * scanArgs(["--port", "80", "-v"], { port: { type: "string" }, verbose: { type: "boolean", short: "v" } });
 * // { values: { port: "80", verbose: true }, positionals: [] }
 * ```
 */
export function scanArgs(
  args: readonly string[],
  options: Readonly<Record<string, ScanOption>>,
  allowPositionals = false,
): ScannedArgs {
  const byShort = new Map<string, string>();
  for (const [name, o] of Object.entries(options)) if (o.short) byShort.set(o.short, name);
  const values: Record<string, string | boolean | (string | boolean)[]> = {};
  const positionals: string[] = [];
  const set = (name: string, value: string | boolean) => {
    if (!options[name].multiple) values[name] = value;
    else ((values[name] ??= []) as (string | boolean)[]).push(value);
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      positionals.push(...args.slice(i + 1));
      break;
    }
    let shown: string;
    let name: string | undefined;
    let inline: string | undefined;
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      shown = eq < 0 ? arg : arg.slice(0, eq);
      inline = eq < 0 ? undefined : arg.slice(eq + 1);
      name = Object.hasOwn(options, shown.slice(2)) ? shown.slice(2) : undefined;
    } else if (arg.startsWith("-") && arg.length > 1) {
      shown = arg.slice(0, 2);
      inline = arg.length > 2 ? arg.slice(arg[2] === "=" ? 3 : 2) : undefined;
      name = byShort.get(arg[1]);
    } else {
      if (!allowPositionals) throw new FlagError(`unexpected argument ${JSON.stringify(arg)}`);
      positionals.push(arg);
      continue;
    }
    if (name === undefined) throw new FlagError(`unknown flag ${shown}`);
    const long = `--${name}`;
    if (options[name].type === "boolean") {
      if (inline !== undefined) throw new FlagError(`${long} takes no value`);
      set(name, true);
      continue;
    }
    if (inline !== undefined) {
      set(name, inline);
      continue;
    }
    const next = args[i + 1];
    if (next === undefined) throw new FlagError(`${long} needs a value`);
    if (next.startsWith("-") && next !== "-") {
      throw new FlagError(`${long} needs a value (one that starts with "-" goes as ${long}=-...)`);
    }
    set(name, next);
    i++;
  }
  return { values, positionals };
}

/**
 * Command-line flags for Sluice's programs (the examples, the benchmark tools):
 * one table of flags gives the `--help` text, strict parsing and typed values,
 * so every program answers `--help` and a bad flag the same way.
 *
 * - `--help` / `-h` prints the usage to stdout and exits 0;
 * - an unknown flag, a missing value or a malformed one (`--port abc` for an
 *   integer flag) prints one line to stderr, naming the flag and ending with
 *   `run with --help for usage`, and exits 2. Never a stack trace.
 *
 * @example
 * ```ts
 * import { cliFlags } from "./cli_flags.ts";
 *
 * const { values } = cliFlags({
 *   name: "hello",
 *   usage: "deno run --allow-net hello.ts [flags]",
 *   description: "Serves one event stream.",
 *   flags: {
 *     port: { type: "integer", default: 8080, max: 65535, help: "TCP port (0: any free port)" },
 *     verbose: { type: "boolean", short: "v", help: "log every request" },
 *   },
 * });
 * values.port; // number
 * values.verbose; // boolean
 * ```
 *
 * @module
 */

import { FlagError, scanArgs, type ScanOption } from "./scan_args.ts";

/** What a flag takes: a string, nothing (`boolean`), a number, or an integer. */
export type FlagType = "string" | "boolean" | "number" | "integer";

/** One flag of a program. */
export interface FlagSpec {
  /** What the flag takes. */
  type: FlagType;
  /** One line of help. */
  help: string;
  /**
   * Value when the flag is not given (a number for `number` and `integer` flags).
   * @default {undefined} (`false` for a boolean, `[]` for a repeatable flag)
   */
  default?: string | number;
  /** One-letter alias, without the dash. */
  short?: string;
  /**
   * The flag may be repeated; its value is then the list of values given.
   * @default {false}
   */
  multiple?: boolean;
  /**
   * Least value of a `number` or `integer` flag.
   * @default {0}
   */
  min?: number;
  /**
   * Greatest value of a `number` or `integer` flag.
   * @default {Infinity}
   */
  max?: number;
  /** The only values a `string` flag accepts. */
  choices?: readonly string[];
  /**
   * Name of the value in the usage text.
   * @default {"<v>"}
   */
  value?: string;
}

/** A program: its name, how it is run, what it does, and its flags. */
export interface CliSpec<F extends Record<string, FlagSpec> = Record<string, FlagSpec>> {
  /** Program name, the prefix of its error lines. */
  name: string;
  /** How to run it, e.g. `deno run --allow-net examples/x.ts [flags]`. */
  usage: string;
  /** One paragraph: what the program does. */
  description: string;
  /** The flags, by long name (without `--`). `help` and `h` are taken. */
  flags: F;
  /**
   * Positional arguments the program requires, in order; by default it takes none.
   * @default {[]}
   */
  positionals?: readonly { name: string; help: string }[];
}

/** The type of one flag's value: boolean, number, one of its choices, or string. */
export type FlagValueOf<S extends FlagSpec> = S["type"] extends "boolean" ? boolean
  : S["type"] extends "number" | "integer" ? number
  : S extends { choices: readonly (infer C)[] } ? C
  : string;

/** The typed values of a flag table: flags without a default may be `undefined`. */
export type FlagValues<F extends Record<string, FlagSpec>> = {
  -readonly [K in keyof F]: F[K] extends { multiple: true } ? FlagValueOf<F[K]>[]
    : F[K] extends { type: "boolean" } ? boolean
    : F[K] extends { default: string | number } ? FlagValueOf<F[K]>
    : FlagValueOf<F[K]> | undefined;
};

/** What {@linkcode parseFlags} found. */
export interface ParsedFlags<F extends Record<string, FlagSpec>> {
  /** Whether `--help` or `-h` was given (the values are then not checked). */
  help: boolean;
  /** The flags' values, converted and checked. */
  values: FlagValues<F>;
  /** The positional arguments. */
  positionals: string[];
}

export { FlagError } from "./scan_args.ts";

/** The hint that ends every error line. */
export const FLAG_ERROR_HINT = "run with --help for usage";

function range(spec: FlagSpec): string {
  const min = spec.min ?? 0;
  const max = spec.max ?? Infinity;
  if (max === Infinity) return min === -Infinity ? "" : ` >= ${min}`;
  return min === -Infinity ? ` <= ${max}` : ` from ${min} to ${max}`;
}

function convert(name: string, spec: FlagSpec, raw: string): string | number {
  if (spec.type === "number" || spec.type === "integer") {
    const n = Number(raw);
    const ok = spec.type === "integer"
      ? /^-?[0-9]+$/.test(raw)
      : raw.trim() !== "" && Number.isFinite(n);
    if (!ok || n < (spec.min ?? 0) || n > (spec.max ?? Infinity)) {
      throw new FlagError(
        `--${name} must be ${spec.type === "integer" ? "an integer" : "a number"}${
          range(spec)
        }: received ${JSON.stringify(raw)}`,
      );
    }
    return n;
  }
  if (spec.choices && !spec.choices.includes(raw)) {
    const list = spec.choices.length === 2
      ? spec.choices.join(" or ")
      : `one of ${spec.choices.join(", ")}`;
    throw new FlagError(`--${name} must be ${list}: received ${JSON.stringify(raw)}`);
  }
  return raw;
}

/**
 * Parses a command line against a flag table without printing or exiting.
 *
 * @param spec The program and its flags.
 * @param args The command line, without the program.
 * @returns Whether help was asked for, the typed values and the positionals.
 * @throws {FlagError} For an unknown flag, a missing or malformed value, or a
 * wrong number of positional arguments.
 *
 * @example
 * ```ts
 * import { parseFlags } from "./cli_flags.ts";
 *
 * const spec = {
 *   name: "x",
 *   usage: "x [flags]",
 *   description: "Does x.",
 *   flags: { size: { type: "integer", default: 100, min: 1, help: "bytes" } },
 * } as const;
 * parseFlags(spec, ["--size", "5"]).values.size; // 5
 * ```
 */
export function parseFlags<const F extends Record<string, FlagSpec>>(
  spec: CliSpec<F>,
  args: readonly string[],
): ParsedFlags<F> {
  const options: Record<string, ScanOption> = { help: { type: "boolean", short: "h" } };
  for (const [name, f] of Object.entries(spec.flags)) {
    options[name] = {
      type: f.type === "boolean" ? "boolean" : "string",
      short: f.short,
      multiple: f.multiple,
    };
  }
  const expected = spec.positionals ?? [];
  const parsed = scanArgs(args, options, expected.length > 0);
  const raw = parsed.values as Record<string, string | boolean | string[] | undefined>;
  const values: Record<string, unknown> = {};
  if (raw.help === true) {
    return { help: true, values: values as FlagValues<F>, positionals: parsed.positionals };
  }
  for (const [name, f] of Object.entries(spec.flags)) {
    const given = raw[name];
    if (f.type === "boolean") {
      values[name] = f.multiple ? (given ?? []) : given === true;
    } else if (Array.isArray(given)) {
      values[name] = given.map((v) => convert(name, f, v));
    } else if (typeof given === "string") {
      values[name] = convert(name, f, given);
    } else {
      values[name] = f.multiple ? [] : f.default;
    }
  }
  if (parsed.positionals.length > expected.length) {
    throw new FlagError(
      `unexpected argument ${JSON.stringify(parsed.positionals[expected.length])}`,
    );
  }
  if (parsed.positionals.length < expected.length) {
    throw new FlagError(`missing argument ${expected[parsed.positionals.length].name}`);
  }
  return { help: false, values: values as FlagValues<F>, positionals: parsed.positionals };
}

/** Breaks `text` at spaces into lines of at most `width` characters (longer words stay whole). */
function wrap(text: string, width: number): string {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === "" ? word : `${line} ${word}`;
    }
  }
  if (line !== "") lines.push(line);
  return lines.join("\n");
}

/**
 * The `--help` text of a program: description, how to run it, and one line per flag.
 *
 * @param spec The program and its flags.
 * @returns The text, ending with a newline.
 *
 * @example
 * ```ts
 * import { usageText } from "./cli_flags.ts";
 *
 * console.log(usageText({ name: "x", usage: "x [flags]", description: "Does x.", flags: {} }));
 * ```
 */
export function usageText(spec: CliSpec): string {
  let text = `${wrap(`${spec.name}: ${spec.description}`, 100)}\n\nUsage: ${spec.usage}\n`;
  const positionals = spec.positionals ?? [];
  if (positionals.length > 0) {
    text += "\nArguments:\n";
    for (const p of positionals) text += `  ${p.name.padEnd(24)} ${p.help}\n`;
  }
  text += "\nFlags:\n";
  const rows: [string, FlagSpec][] = [
    ...Object.entries(spec.flags),
    ["help", { type: "boolean", short: "h", help: "show this help" }],
  ];
  for (const [name, f] of rows) {
    const value = f.type === "boolean" ? "" : ` ${f.value ?? "<v>"}`;
    const left = `  ${f.short ? `-${f.short}, ` : ""}--${name}${value}`;
    const notes = [
      f.choices ? f.choices.join(" | ") : undefined,
      f.default !== undefined ? `default ${f.default}` : undefined,
      f.multiple ? "repeatable" : undefined,
    ].filter(Boolean).join(", ");
    text += `${left.padEnd(26)} ${f.help}${notes ? ` (${notes})` : ""}\n`;
  }
  return text;
}

/**
 * Parses `args` for a program's entry point: prints the usage and exits 0 on
 * `--help`; prints one line naming the bad flag (and {@linkcode FLAG_ERROR_HINT})
 * to stderr and exits 2 on a bad command line.
 *
 * @param spec The program and its flags.
 * @param args The command line, without the program.
 * @returns The typed values and the positionals (help is never set: it exits).
 *
 * @example
 * ```ts
 * import { cliFlags } from "./cli_flags.ts";
 *
 * const { values } = cliFlags({
 *   name: "tick",
 *   usage: "deno run tick.ts [flags]",
 *   description: "Prints a tick every --every seconds.",
 *   flags: { every: { type: "number", default: 1, help: "seconds between ticks" } },
 * });
 * setInterval(() => console.log("tick"), values.every * 1000);
 * ```
 */
export function cliFlags<const F extends Record<string, FlagSpec>>(
  spec: CliSpec<F>,
  args: readonly string[] = Deno.args,
): ParsedFlags<F> {
  let parsed: ParsedFlags<F>;
  try {
    parsed = parseFlags(spec, args);
  } catch (err) {
    if (!(err instanceof FlagError)) throw err;
    console.error(`${spec.name}: ${err.message}; ${FLAG_ERROR_HINT}`);
    Deno.exit(2);
  }
  if (parsed.help) {
    console.log(usageText(spec));
    Deno.exit(0);
  }
  return parsed;
}

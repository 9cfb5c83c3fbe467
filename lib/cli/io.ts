/**
 * The CLI's connection to the outside world, injected so that tests can run commands in process.
 *
 * @module
 */

export interface Io {
  /** Buffered; flushed by `flush()` and when the command ends. */
  out(text: string): void;
  /** Raw bytes to stdout, in order with `out`. */
  outBytes(bytes: Uint8Array): void;
  /** Unbuffered. */
  err(text: string): void;
  /** Raw bytes to stderr. */
  errBytes(bytes: Uint8Array): void;
  flush(): void;
  /** Reads standard input to the end. */
  readStdin(): Promise<string>;
  readonly stdoutIsTerminal: boolean;
  readonly stderrIsTerminal: boolean;
  /** The width of the terminal on stdout, in columns; undefined when it is not a terminal. */
  terminalColumns?(): number | undefined;
  env(name: string): string | undefined;
  readonly cwd: string;
}

const FLUSH_AT = 64 * 1024;

function writeAll(file: { writeSync(p: Uint8Array): number }, bytes: Uint8Array): void {
  let offset = 0;
  while (offset < bytes.length) offset += file.writeSync(bytes.subarray(offset));
}

/** The real process: Deno's stdin, stdout and stderr. */
export function processIo(): Io {
  const encoder = new TextEncoder();
  let pending: string[] = [];
  let size = 0;
  const flush = () => {
    if (pending.length === 0) return;
    const text = pending.join("");
    pending = [];
    size = 0;
    writeAll(Deno.stdout, encoder.encode(text));
  };
  return {
    out(text) {
      pending.push(text);
      size += text.length;
      if (size >= FLUSH_AT) flush();
    },
    outBytes(bytes) {
      flush();
      writeAll(Deno.stdout, bytes);
    },
    err(text) {
      flush();
      writeAll(Deno.stderr, encoder.encode(text));
    },
    errBytes(bytes) {
      flush();
      writeAll(Deno.stderr, bytes);
    },
    flush,
    readStdin: () => new Response(Deno.stdin.readable).text(),
    stdoutIsTerminal: Deno.stdout.isTerminal(),
    stderrIsTerminal: Deno.stderr.isTerminal(),
    terminalColumns() {
      if (!Deno.stdout.isTerminal()) return undefined;
      try {
        return Deno.consoleSize().columns || undefined;
      } catch {
        return undefined;
      }
    },
    env: (name) => Deno.env.get(name),
    cwd: Deno.cwd(),
  };
}

/** Captures output in memory; for tests. */
export class MemoryIo implements Io {
  stdout = "";
  stderr = "";
  readonly stdoutIsTerminal: boolean;
  readonly stderrIsTerminal: boolean;
  readonly cwd: string;
  readonly #stdin: string;
  readonly #env: Record<string, string>;
  readonly #columns: number | undefined;

  constructor(
    options: {
      stdin?: string;
      env?: Record<string, string>;
      cwd?: string;
      /** Pretend stdout is a terminal this many columns wide. */
      columns?: number;
      /** Pretend stderr is a terminal. */
      stderrIsTerminal?: boolean;
    } = {},
  ) {
    this.#stdin = options.stdin ?? "";
    this.#env = options.env ?? {};
    this.cwd = options.cwd ?? "/";
    this.#columns = options.columns;
    this.stdoutIsTerminal = options.columns !== undefined;
    this.stderrIsTerminal = options.stderrIsTerminal ?? false;
  }
  terminalColumns(): number | undefined {
    return this.#columns;
  }
  out(text: string): void {
    this.stdout += text;
  }
  outBytes(bytes: Uint8Array): void {
    this.stdout += new TextDecoder().decode(bytes);
  }
  err(text: string): void {
    this.stderr += text;
  }
  errBytes(bytes: Uint8Array): void {
    this.stderr += new TextDecoder().decode(bytes);
  }
  flush(): void {}
  readStdin(): Promise<string> {
    return Promise.resolve(this.#stdin);
  }
  env(name: string): string | undefined {
    return this.#env[name];
  }
}

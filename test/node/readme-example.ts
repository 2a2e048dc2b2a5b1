// Runs the examples of README.md and the docs/*.md guides as their authors wrote them: a ```ts
// block is found by its heading and a marker, its types are stripped (TypeScript's
// transpileModule), and it is written next to the compiled tests — inside the package, so
// `import … from 'duplex-ws'` (and 'duplex-ws/hub', …) resolves through the package's
// self-reference, to the package's exports map, exactly as in a project that installed it.
// `runExample` runs it in a child `node` and returns its output; `loadExample` imports it into
// the test process and returns the variables the test names; `startExample` keeps the child
// running (for examples that serve until a signal).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { unlink, writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';

const here = fileURLToPath(new URL('.', import.meta.url));
/** The repository (package) root: dist/test/node/ is three levels down. */
export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

/** One fenced code block of a Markdown file. */
export interface DocBlock {
  /** The info string's language (`ts`, `sh`, `html`, …). */
  lang: string;
  /** The block's text, ending with a newline. */
  code: string;
  /** The headings the block sits under, outermost first (without the `#`s). */
  headings: string[];
  /** 1-based line of the opening fence. */
  line: number;
}

/** Every fenced code block of `file` (relative to the repository root), in order. */
export function docBlocks(file: string): DocBlock[] {
  return parseDoc(file).blocks;
}

/** The code blocks of a Markdown file and every heading outside them. */
function parseDoc(file: string): { blocks: DocBlock[]; allHeadings: string[] } {
  const lines = readFileSync(`${repoRoot}${file}`, 'utf8').split('\n');
  const blocks: DocBlock[] = [];
  const allHeadings: string[] = [];
  const headings: string[] = [];
  let open: { fence: string; lang: string; line: number; body: string[] } | undefined;
  lines.forEach((text, index) => {
    if (open) {
      if (text.trimEnd() === open.fence) {
        blocks.push({ lang: open.lang, code: open.body.map((l) => `${l}\n`).join(''), headings: [...headings], line: open.line });
        open = undefined;
      } else open.body.push(text);
      return;
    }
    const fence = /^(`{3,})\s*([\w-]*)/.exec(text);
    if (fence) {
      open = { fence: fence[1]!, lang: fence[2]!, line: index + 1, body: [] };
      return;
    }
    const heading = /^(#{1,6})\s+(.*?)\s*$/.exec(text);
    if (heading) {
      allHeadings.push(heading[2]!);
      headings.length = heading[1]!.length - 1;
      headings[heading[1]!.length - 1] = heading[2]!;
    }
  });
  if (open) throw new Error(`${file}:${open.line}: unclosed code block`);
  return { blocks: blocks.map((block) => ({ ...block, headings: block.headings.filter((h) => h !== undefined) })), allHeadings };
}

/**
 * The first ```ts block of `file` (relative to the repository root) under the heading `heading`
 * (any level, its whole section including subsections) that contains `marker`.
 */
export function docExample(file: string, heading: string, marker: string): string {
  const { blocks, allHeadings } = parseDoc(file);
  if (!allHeadings.includes(heading)) throw new Error(`${file} has no "${heading}" heading`);
  const found = blocks.find((block) => block.headings.includes(heading) && block.lang === 'ts' && block.code.includes(marker));
  if (!found) throw new Error(`no ts example containing ${JSON.stringify(marker)} under "${heading}" in ${file}`);
  return found.code;
}

/** The first ```ts block of README.md under `heading` that contains `marker`. */
export function readmeExample(heading: string, marker: string): string {
  return docExample('README.md', heading, marker);
}

/** Apply each replacement (each must occur) and strip the TypeScript types. */
export function prepareExample(code: string, replacements: Record<string, string> = {}): string {
  for (const [from, to] of Object.entries(replacements)) {
    if (!code.includes(from)) throw new Error(`example does not contain ${JSON.stringify(from)}`);
    code = code.split(from).join(to);
  }
  return ts.transpileModule(code, {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, removeComments: false },
  }).outputText;
}

let counter = 0;

async function writeExample(code: string): Promise<string> {
  const file = `${here}readme-example-${process.pid}-${counter++}.mjs`;
  await writeFile(file, code);
  return file;
}

/** Run `code` (with each `from` string replaced) as an ES module in a child `node`; resolves with its stdout lines. */
export async function runExample(code: string, replacements: Record<string, string> = {}, timeout = 5000): Promise<string[]> {
  const file = await writeExample(prepareExample(code, replacements));
  try {
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, [file], { timeout }, (error, out, err) => {
        if (error) reject(new Error(`example failed: ${error.message}\n${err}`));
        else resolve(out);
      });
    });
    return stdout.split('\n').filter((line) => line !== '');
  } finally {
    await unlink(file);
  }
}

/**
 * Import `code` (with each `from` string replaced) into this process and return the top-level
 * variables named in `names` (the example's `server`, `ws`, …), so the test can exercise and
 * close what the example made. `prelude` goes before the example (e.g. an import it assumes).
 */
export async function loadExample<T extends Record<string, unknown>>(
  code: string,
  names: readonly (keyof T & string)[],
  replacements: Record<string, string> = {},
  prelude = '',
): Promise<T> {
  const file = await writeExample(`${prepareExample(prelude + code, replacements)}\nexport { ${names.join(', ')} };\n`);
  try {
    return (await import(pathToFileURL(file).href)) as T;
  } finally {
    await unlink(file);
  }
}

/** A running example: its process, its stdout line by line, and its exit. */
export interface RunningExample {
  child: ChildProcess;
  /** The next stdout line (rejects if the process ends first). */
  nextLine(): Promise<string>;
  /** Resolves with the exit code (or the signal's name) once the process has ended. */
  exited: Promise<number | string>;
  /** Everything the process wrote to stderr so far. */
  stderr(): string;
}

/** Start `code` (with each `from` string replaced) in a child `node` that keeps running; the caller ends it. */
export async function startExample(code: string, replacements: Record<string, string> = {}): Promise<RunningExample> {
  const file = await writeExample(prepareExample(code, replacements));
  const child = spawn(process.execPath, [file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      void unlink(file).catch(() => {});
      resolve(code ?? signal ?? -1);
    });
  });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  return {
    child,
    exited,
    stderr: () => err,
    async nextLine() {
      const { value, done } = await lines.next();
      if (done) throw new Error(`example ended before printing a line:\n${err}`);
      return value as string;
    },
  };
}

// Runs a README example as its author wrote it: the code block is written next to the compiled
// tests (inside the package, so `import … from 'duplex'` resolves to this package) and run by a
// child `node`, whose output the test checks.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { unlink, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const readmePath = fileURLToPath(new URL('../../../README.md', import.meta.url));

/** The first ```ts block under the `## heading` section of README.md that contains `marker`. */
export function readmeExample(heading: string, marker: string): string {
  const readme = readFileSync(readmePath, 'utf8');
  const start = readme.indexOf(`\n## ${heading}\n`);
  if (start < 0) throw new Error(`README has no "## ${heading}" section`);
  const next = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, next < 0 ? undefined : next);
  for (const match of section.matchAll(/```ts\n([\s\S]*?)```/g)) {
    if (match[1].includes(marker)) return match[1];
  }
  throw new Error(`no ts example containing ${JSON.stringify(marker)} under "## ${heading}"`);
}

let counter = 0;

/** Run `code` (with each `from` string replaced) as an ES module; resolves with its stdout lines. */
export async function runExample(code: string, replacements: Record<string, string> = {}, timeout = 5000): Promise<string[]> {
  for (const [from, to] of Object.entries(replacements)) {
    if (!code.includes(from)) throw new Error(`example does not contain ${JSON.stringify(from)}`);
    code = code.split(from).join(to);
  }
  const file = `${here}readme-example-${process.pid}-${counter++}.mjs`;
  await writeFile(file, code);
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

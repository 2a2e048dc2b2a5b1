// Every ```ts block of README.md and docs/*.md type-checks (strict) against the package as a
// user gets it: each block is a module placed next to the compiled tests, inside the package,
// so `import … from 'duplex-ws'` (and every subpath) resolves through the exports map to the
// published declarations. The examples that can run are also run, by the tests that name them
// (`docExample` in readme-example.ts); this catches the others (and types in all of them).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import ts from 'typescript';
import { docBlocks, repoRoot } from './readme-example.js';

const documents = ['README.md', ...readdirSync(`${repoRoot}docs`).filter((name) => name.endsWith('.md')).sort().map((name) => `docs/${name}`)];

test('every ts example of README.md and docs/*.md type-checks against the published types', { timeout: 60_000 }, () => {
  const virtual = new Map<string, { text: string; doc: string; line: number }>();
  for (const doc of documents) {
    for (const block of docBlocks(doc)) {
      if (block.lang !== 'ts') continue;
      const name = `${repoRoot}dist/test/node/doc-example-${doc.replace(/[^a-z0-9]+/gi, '-')}-${block.line}.ts`;
      // `export {}` makes every block a module, as it is for its reader (its own scope, top-level await).
      virtual.set(name, { text: `${block.code}export {};\n`, doc, line: block.line });
    }
  }
  assert.ok(virtual.size >= 15, `found only ${virtual.size} ts examples`);

  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    lib: ['lib.es2022.d.ts', 'lib.dom.d.ts'],
    types: ['node'],
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    esModuleInterop: true,
  };
  const host = ts.createCompilerHost(options);
  const { fileExists, readFile, getSourceFile } = host;
  host.fileExists = (file) => virtual.has(file) || fileExists.call(host, file);
  host.readFile = (file) => virtual.get(file)?.text ?? readFile.call(host, file);
  host.getSourceFile = (file, language, ...rest) => {
    const example = virtual.get(file);
    return example ? ts.createSourceFile(file, example.text, language, true) : getSourceFile.call(host, file, language, ...rest);
  };
  const program = ts.createProgram([...virtual.keys()], options, host);

  const problems: string[] = [];
  for (const diagnostic of ts.getPreEmitDiagnostics(program)) {
    const example = diagnostic.file && virtual.get(diagnostic.file.fileName);
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n');
    if (!diagnostic.file || !example) {
      problems.push(`(global) ${message}`);
      continue;
    }
    const { line } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start ?? 0);
    problems.push(`${example.doc}:${example.line + 1 + line}: ${message}`);
  }
  assert.deepEqual(problems, []);
});

// Pins the public surface: for every subpath of the package, the exported names (values and
// types, from the published `.d.ts`) must equal test/package/surface.json, and the runtime names
// must equal the declared values. An accidental export or removal fails here; a deliberate one
// updates the pin: `npx tsc && UPDATE_SURFACE=1 node --test dist/test/package/surface.test.js`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { anyInDeclarations, declaredSurface, exportsMap, root, runtimeNames, specifier, type Surface } from './surface.js';

const pinFile = join(root, 'test/package/surface.json');
const entries = exportsMap();
const { surface, program } = declaredSurface(entries);
if (process.env.UPDATE_SURFACE === '1') writeFileSync(pinFile, `${JSON.stringify(surface, null, 2)}\n`);
const pinned = JSON.parse(readFileSync(pinFile, 'utf8')) as Record<string, Surface>;

test('the package exports exactly the pinned subpaths', () => {
  assert.deepEqual(Object.keys(entries).sort(), Object.keys(pinned).sort());
});

for (const subpath of Object.keys(pinned)) {
  test(`${specifier(subpath)}: the declared exports are the pinned ones`, () => {
    assert.deepEqual(surface[subpath], pinned[subpath]);
  });

  test(`${specifier(subpath)}: import() gives exactly the declared values`, async () => {
    assert.deepEqual(await runtimeNames(subpath), pinned[subpath]?.values);
  });
}

test('no `any` in the published declarations', () => {
  assert.deepEqual(anyInDeclarations(program), []);
});

test('no @internal member is published', () => {
  const leaked = program
    .getSourceFiles()
    .filter((file) => file.fileName.startsWith(join(root, 'dist/src')) && file.text.includes('@internal'))
    .map((file) => file.fileName.slice(root.length));
  assert.deepEqual(leaked, []);
});

// The public surface of every subpath of the package, read the way a consumer meets it: the
// runtime names from `import()` of the subpath (through the package's own exports map), and every
// exported name, types included, from the published `.d.ts` with the TypeScript compiler.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import ts from 'typescript';

export const root = fileURLToPath(new URL('../../../', import.meta.url));

interface ExportTarget {
  readonly types: string;
  readonly default: string;
}

/** package.json's `exports`, without `./package.json`. */
export function exportsMap(): Record<string, ExportTarget> {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name: string; exports: Record<string, ExportTarget | string> };
  const map: Record<string, ExportTarget> = {};
  for (const [subpath, target] of Object.entries(pkg.exports)) {
    if (typeof target === 'string') continue; // ./package.json
    map[subpath] = target;
  }
  return map;
}

/** `.` → `duplex-ws`, `./hub` → `duplex-ws/hub`. */
export function specifier(subpath: string): string {
  return subpath === '.' ? 'duplex-ws' : `duplex-ws/${subpath.slice(2)}`;
}

/** What one subpath exports: runtime values, and names that exist only as types. */
export interface Surface {
  values: string[];
  types: string[];
}

/** Every exported name of each entry `.d.ts`, split into values and type-only names. */
export function declaredSurface(entries: Record<string, ExportTarget>): { surface: Record<string, Surface>; program: ts.Program } {
  const files = Object.values(entries).map((target) => join(root, target.types));
  const program = ts.createProgram(files, {
    strict: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    types: ['node'],
    typeRoots: [join(root, 'node_modules/@types')],
    noEmit: true,
    skipLibCheck: true,
  });
  const checker = program.getTypeChecker();
  const surface: Record<string, Surface> = {};
  for (const [subpath, target] of Object.entries(entries)) {
    const source = program.getSourceFile(join(root, target.types));
    if (!source) throw new Error(`${target.types} is missing: build first`);
    const moduleSymbol = checker.getSymbolAtLocation(source);
    const values: string[] = [];
    const types: string[] = [];
    for (const symbol of moduleSymbol ? checker.getExportsOfModule(moduleSymbol) : []) {
      const resolved = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
      // A type-only re-export (`export type { X }`) is a type even when X is a class.
      const typeOnly = symbol.declarations?.some((d) => ts.isTypeOnlyExportDeclaration(d)) ?? false;
      if (!typeOnly && resolved.flags & ts.SymbolFlags.Value) values.push(symbol.name);
      else types.push(symbol.name);
    }
    surface[subpath] = { values: values.sort(), types: types.sort() };
  }
  return { surface, program };
}

/** Every `any` written in the published declarations reachable from the entry points. */
export function anyInDeclarations(program: ts.Program): string[] {
  const found: string[] = [];
  const distSrc = join(root, 'dist/src');
  for (const source of program.getSourceFiles()) {
    if (!source.fileName.startsWith(distSrc)) continue;
    const visit = (node: ts.Node): void => {
      if (node.kind === ts.SyntaxKind.AnyKeyword) {
        const { line } = source.getLineAndCharacterOfPosition(node.getStart(source));
        found.push(`${source.fileName.slice(root.length)}:${line + 1}: ${source.text.split('\n')[line]?.trim()}`);
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return found;
}

/** The runtime names of one subpath, as `import()` of the package gives them. */
export async function runtimeNames(subpath: string): Promise<string[]> {
  const module = (await import(specifier(subpath))) as Record<string, unknown>;
  return Object.keys(module).sort();
}

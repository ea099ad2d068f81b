// Minifies the custom element for the package: `node scripts/minify-element.mjs <in> <out>`.
// esbuild minifies the JS but leaves string contents alone, so the element's stylesheet (the
// `CSS` template literal, written readable with comments) is minified first as CSS, by the same
// esbuild; the import of ./liveshop.js stays as it is.
import { readFileSync, writeFileSync } from "node:fs";
import { transformSync } from "esbuild";

const [input, output] = process.argv.slice(2);
const source = readFileSync(input, "utf8");
const literal = /^const CSS = `([^`\\$]*(?:\\`[^`\\$]*)*)`;$/m;
const match = source.match(literal);
if (!match) throw new Error(`${input}: no \`const CSS = \`...\`;\` literal to minify (no \${}, no backslash but \\\`)`);
const css = transformSync(match[1].replaceAll("\\`", "`"), { loader: "css", minify: true }).code.trim();
const js = source.replace(literal, () => `const CSS = ${JSON.stringify(css)};`);
const { code } = transformSync(js, { loader: "js", minify: true, format: "esm", target: "es2022" });
writeFileSync(output, code);

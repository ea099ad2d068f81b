// Writes pkg/package.json for the files build-pkg.sh put in pkg/. Name, version, description,
// license and repository come from Cargo.toml: one source of truth for the crate and the package.
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";

const [pkgDir, jsDir] = process.argv.slice(2);

/** A string field of Cargo.toml's [package] table. */
function cargo(field) {
  const table = readFileSync("Cargo.toml", "utf8").split(/^\[/m).find((t) => t.startsWith("package]"));
  const m = table?.match(new RegExp(`^${field}\\s*=\\s*"([^"]*)"`, "m"));
  if (!m) throw new Error(`Cargo.toml: [package] has no ${field}`);
  return m[1];
}

const repository = cargo("repository").replace(/\/$/, "");
// The files of js/ ship as they are (the custom element, the package README).
const extras = readdirSync(jsDir).sort();
const element = extras.includes("element.js");

const exports = { ".": { types: "./liveshop.d.ts", default: "./liveshop.js" } };
if (element) {
  exports["./element"] = existsSync(`${jsDir}/element.d.ts`)
    ? { types: "./element.d.ts", default: "./element.js" }
    : "./element.js";
}
// For a bundler or server that wants the wasm's URL itself (e.g. to preload it).
exports["./liveshop_bg.wasm"] = "./liveshop_bg.wasm";
exports["./package.json"] = "./package.json";

const meta = {
  name: cargo("name"),
  version: cargo("version"),
  description: cargo("description"),
  keywords: ["ll-hls", "hls", "low-latency", "live-streaming", "live-shopping", "video-player", "mse", "webassembly", "wasm"],
  license: cargo("license"),
  homepage: `${repository}#readme`,
  bugs: { url: `${repository}/issues` },
  repository: { type: "git", url: repository },
  type: "module",
  main: "./liveshop.js",
  types: "./liveshop.d.ts",
  exports,
  files: ["liveshop.js", "liveshop.d.ts", "liveshop_bg.wasm", "liveshop_bg.wasm.d.ts", ...extras, "CHANGELOG.md", "LICENSE"]
    .filter((f, i, all) => all.indexOf(f) === i),
  // The glue only declares; the custom element registers itself on import: a bundler must not
  // drop that import.
  sideEffects: element ? ["./element.js"] : false,
  // Node only imports it (server-side rendering) and can instantiate the wasm; playing takes a
  // browser with Media Source Extensions.
  engines: { node: ">=18" },
};
writeFileSync(`${pkgDir}/package.json`, JSON.stringify(meta, null, 2) + "\n");

// A production build into dist/ (or OUT_DIR): main.js, the wasm as an asset, index.html copied.
import { copyFileSync, mkdirSync } from "node:fs";
import { resolve } from "node:path";

const out = resolve(process.env.OUT_DIR ?? "dist");

export default {
  mode: "production",
  entry: "./src/index.js",
  // Top-level await in the entry: the output is an ES module.
  experiments: { outputModule: true },
  output: { path: out, filename: "main.js", module: true, clean: true },
  // The player's wasm is bigger than webpack's default hint (244 KiB) and loads in parallel.
  performance: { hints: false },
  plugins: [
    {
      apply(compiler) {
        compiler.hooks.afterEmit.tap("copy-index", () => {
          mkdirSync(out, { recursive: true });
          copyFileSync("index.html", resolve(out, "index.html"));
        });
      },
    },
  ],
};

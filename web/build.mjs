// Bundles the workspace into the Python package: src/aimd/platform/static/ (no CDN at run time).
import { build } from "esbuild";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";

const out = new URL("../src/aimd/platform/static/", import.meta.url).pathname;
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await build({
  entryPoints: ["src/main.js"],
  bundle: true,
  format: "esm",
  minify: !process.env.AIMD_WEB_DEBUG,
  sourcemap: false,
  target: ["chrome110", "firefox115"],
  outfile: `${out}app.js`,
  legalComments: "linked",
  logLevel: "warning",
});
copyFileSync("src/index.html", `${out}index.html`);
copyFileSync("src/style.css", `${out}style.css`);

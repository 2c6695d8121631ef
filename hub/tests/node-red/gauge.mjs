// Reads the CPU gauge of deploy/node-red/flow-dashboard.json in headless Chromium, as a
// user opening Node-RED's Dashboard 2.0 page would see it. Run by hub/tests/node_red.rs:
//
//   node gauge.mjs URL CHROMIUM
//
// Waits (at most 30 s) until the gauge shows a number, then prints one JSON line
// {"title", "value", "unit"} and saves a screenshot next to SCREENSHOT (if set). Uses
// playwright-core from hub/tests/browser (scripts/install-deps.sh --test installs it).
import { chromium } from "../browser/node_modules/playwright-core/index.mjs";

const [url, executablePath] = process.argv.slice(2);
if (!url || !executablePath) {
  console.error("usage: node gauge.mjs URL CHROMIUM");
  process.exit(2);
}
const browser = await chromium.launch({
  executablePath,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-dev-shm-usage",
    "--no-first-run", "--disable-background-networking", "--disable-component-update",
    "--disable-sync"],
});
try {
  const page = await browser.newPage();
  await page.goto(url);
  const gauge = page.locator(".sitewatch-cpu");
  await gauge.locator(".nrdb-ui-gauge-value span").filter({ hasText: /^\s*-?\d+(\.\d+)?\s*$/ })
    .waitFor({ timeout: 30000 });
  const seen = {
    title: (await gauge.locator(".nrdb-ui-gauge-title").innerText()).trim(),
    value: Number((await gauge.locator(".nrdb-ui-gauge-value span").innerText()).trim()),
    unit: (await gauge.locator(".nrdb-ui-gauge-value label").innerText()).trim(),
  };
  if (process.env.SCREENSHOT) {
    await page.screenshot({ path: process.env.SCREENSHOT });
  }
  console.log(JSON.stringify(seen));
} finally {
  await browser.close();
}

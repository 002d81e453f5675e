import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { type Browser, chromium } from "playwright-core";
import { runsDir } from "../src/host/paths.ts";

/**
 * Debian's chromium, headless, with the flags this closed network needs (no background connections, no
 * component updates): a real browser, never one a package downloads.
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

interface Canvas {
  width: number;
  height: number;
  getContext(
    kind: "2d",
  ): { getImageData(x: number, y: number, w: number, h: number): { data: ArrayLike<number> } } | null;
}

/** What a report page shows, as a browser rendered it, with a screenshot kept under runs/screenshots/. */
export async function openReport(browser: Browser, file: string, shot: string) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  page.on("pageerror", (e) => errors.push(e.message));
  const requests: string[] = [];
  page.on("request", (r) => {
    if (!r.url().startsWith("file:")) requests.push(r.url());
  });
  await page.goto(`file://${file}`);
  await page.waitForLoadState("load");
  const dir = join(runsDir(), "screenshots");
  mkdirSync(dir, { recursive: true });
  const png = join(dir, `${shot}.png`);
  await page.screenshot({ path: png, fullPage: true });
  const verdict = await page.textContent("#verdict");
  const columns = await page.$$eval("#grid thead th", (ths) => ths.slice(1).map((t) => t.textContent ?? ""));
  const fingerprints = await page.$$eval(".splat code.fp", (cs) => cs.map((c) => c.textContent ?? ""));
  // A canvas uPlot drew on has pixels that are not all transparent.
  const drawn = (section: string) =>
    page.$$eval(`${section} canvas`, (cs) =>
      cs.map((el) => {
        // The page's own canvas (no DOM types here: this runs in the browser).
        const c = el as unknown as Canvas;
        const { data } = c.getContext("2d")?.getImageData(0, 0, c.width, c.height) ?? { data: [] };
        let n = 0;
        for (let i = 3; i < data.length; i += 4) if ((data[i] ?? 0) > 0) n++;
        return n;
      }),
    );
  const canvases = await drawn("#plots");
  const trends = await drawn("#trends");
  await page.close();
  return { verdict, columns, fingerprints, canvases, trends, errors, requests, png };
}

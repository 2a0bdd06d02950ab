// Opens an HTML page `runbook report` wrote in Debian's Chromium, headless (tests/tests/report.rs):
// prints, as one JSON line, every request that was not for the file itself, the console's
// errors and the page's exceptions, how long the page took to load, and what it drew; saves a
// screenshot.
//
//   node check.mjs PAGE.html SCREENSHOT.png
import { chromium } from 'playwright-core';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [page_file, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.RUNBOOK_CHROMIUM || '/usr/bin/chromium',
  // As this machine's Chromium needs: no sandbox as root, and nothing that calls out.
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync'],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
const address = pathToFileURL(path.resolve(page_file)).href;
const requests = [];
const errors = [];
page.on('request', (request) => { if (request.url() !== address) requests.push(request.url()); });
page.on('console', (message) => { if (message.type() === 'error' || message.type() === 'warning') errors.push(message.text()); });
page.on('pageerror', (error) => errors.push(String(error)));
await page.goto(address, { waitUntil: 'load' });
const drawn = await page.evaluate(() => {
  const box = (selector) => {
    const svg = document.querySelector(selector);
    if (!svg) return null;
    const rect = svg.getBoundingClientRect();
    return [Math.round(rect.width), Math.round(rect.height)];
  };
  const navigation = performance.getEntriesByType('navigation')[0];
  return {
    title: document.title,
    load_ms: navigation ? navigation.loadEventEnd - navigation.startTime : null,
    graph: box('#graph svg'),
    timeline: box('#timeline svg'),
    nodes: Object.fromEntries([...document.querySelectorAll('#graph .node')].map((n) => [n.dataset.step, n.dataset.status])),
    edges: document.querySelectorAll('#graph .edge').length,
    taken: [...document.querySelectorAll('#graph .edge.taken')].map((e) => e.querySelector('title').textContent),
    bars: [...document.querySelectorAll('#timeline .bar[data-step]')].map((b) => b.dataset.step),
    marks: [...document.querySelectorAll('#timeline .mark')].map((m) => m.dataset.kind),
    details: document.querySelectorAll('details').length,
    text: document.body.innerText,
  };
});
await page.screenshot({ path: screenshot });
await browser.close();
console.log(JSON.stringify({ requests, errors, drawn }));

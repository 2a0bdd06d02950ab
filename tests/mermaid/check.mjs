// node check.mjs FILE...: parses each file with Mermaid's own parser and prints `ok FILE` or
// `error FILE: MESSAGE`, one line per file; exits 1 when any failed, 2 without files.
//
// mermaid.parse needs no browser, but it sanitises labels with DOMPurify, which binds to the
// global `window` when first imported: jsdom provides one before mermaid is loaded.
import { readFile } from 'node:fs/promises';
import { JSDOM } from 'jsdom';

const { window } = new JSDOM('<!DOCTYPE html><html><body></body></html>');
globalThis.window = window;
globalThis.document = window.document;
const { default: mermaid } = await import('mermaid');
mermaid.initialize({ startOnLoad: false, logLevel: 'fatal' });

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node check.mjs FILE...');
  process.exit(2);
}
let failed = 0;
for (const file of files) {
  try {
    const parsed = await mermaid.parse(await readFile(file, 'utf8'));
    if (!String(parsed?.diagramType).startsWith('flowchart')) {
      throw new Error(`not a flowchart: ${parsed?.diagramType}`);
    }
    console.log(`ok ${file}`);
  } catch (error) {
    failed += 1;
    const message = String(error?.message ?? error).split(/\r?\n/).map((line) => line.trim()).filter(Boolean).join(' | ');
    console.log(`error ${file}: ${message}`);
  }
}
window.close();
process.exitCode = failed ? 1 : 0;

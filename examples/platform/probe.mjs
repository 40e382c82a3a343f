// A tiny probe for the demo's command check: exits 0 when URL answers 200, 1 otherwise.
// Usage: node probe.mjs http://127.0.0.1:18030/health
import { get } from "node:http";

const url = process.argv[2];
const req = get(url, { timeout: 2000 }, (res) => {
  res.resume();
  process.exit(res.statusCode === 200 ? 0 : 1);
});
req.on("error", () => process.exit(1));
req.on("timeout", () => {
  req.destroy();
  process.exit(1);
});

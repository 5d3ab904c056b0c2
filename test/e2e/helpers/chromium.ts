import { type Browser, chromium } from "playwright-core";

/** Debian's Chromium (`apt-get install chromium`; .ci/run installs it). Another build can be named here. */
const CHROMIUM_PATH = process.env.HATAGO_CHROMIUM_PATH || "/usr/bin/chromium";

/**
 * Real headless Chromium with a fresh profile (playwright-core makes a temporary one per launch), kept
 * off the network except for what the page loads: no sync, updates or background fetches. `--no-sandbox`
 * because tests run as root in CI containers, where Chromium's sandbox cannot start.
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [
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

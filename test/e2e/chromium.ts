// Shared by the browser tests: Debian's Chromium, headless, with the flags this machine needs.
// Without Chromium a browser test is skipped, except in CI (`CI=true`), where that is a failure.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const inCI = process.env.CI === 'true' || process.env.CI === '1';
const haveChromium = existsSync(CHROMIUM);

/** The `skip` option of a browser test. */
export const skipWithoutChromium: string | false =
  !haveChromium && !inCI ? `no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)` : false;

/** Headless Chromium; in CI without it, a failure that says how to install it. */
export async function launchChromium(): Promise<Browser> {
  if (!haveChromium) assert.fail(`CI=true but Chromium is missing at ${CHROMIUM}: .ci/run installs it with apt-get install chromium`);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Without the background-networking flag Chromium keeps trying hosts this closed network refuses.
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-dev-shm-usage'],
  });
}
